"""EVAL.md from the figures `scripts/lists_eval.py` measured (pure: no I/O).

Everything but the date line is a function of the data and the code, so a diff of EVAL.md
shows real changes only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from evalparts import markdown_table, percent

FIRST_NAMES = 5  # names shown per category of blocked popular names
VARIANTS = ("as shipped", "unseen sites")

# band -> {name: category} of the names that band blocks
Blocked = dict[str, dict[str, str]]


@dataclass
class Figures:
    """What one run measured."""

    date: str
    bands: Sequence[str]
    groups: dict[str, int]  # evaluation group -> held-aside names
    recall: dict[tuple[str, str], Blocked] = field(default_factory=dict)
    popular: dict[str, list[str]] = field(default_factory=dict)  # set -> names in rank order
    false_positives: dict[str, Blocked] = field(default_factory=dict)
    per_category: dict[str, int] = field(default_factory=dict)
    index_bytes: int = 0
    classifier: dict[str, int] | None = None


def render(f: Figures) -> str:
    """The whole of EVAL.md."""
    parts = [
        "# List evaluation\n",
        f"Data: the shipped lists dated {f.date}, measured against `shared/data`.\n",
        "Written by `make lists-eval` (`scripts/lists_eval.py`); do not edit by hand. Every "
        "figure is a decision of the real `Policy` for one profile per built-in band, on a "
        "Wednesday at 12:00 (no bedtime), on the index `ListSet` builds from the shipped "
        "files (the downloaded defaults left out).\n",
        recall_section(f),
        false_positive_section(f),
        classifier_section(f.classifier),
        category_section(f),
    ]
    return "\n".join(parts)


def recall_section(f: Figures) -> str:
    """Recall per band on the held-aside names."""
    rows = []
    for group, count in f.groups.items():
        for variant in VARIANTS:
            blocked = f.recall.get((group, variant), {})
            cells = [percent(len(blocked.get(band, {})), count) for band in f.bands]
            rows.append([group, variant, f"{count:,}", *cells])
    return (
        "## Recall per band (held-aside sites)\n\n"
        "The share of held-aside names (`scripts/datasplit.py`: about one registrable domain "
        "in five) each band blocks. Adult: Sinfonietta pornography, ShadowWhisperer Adult, v2fly "
        "category-porn, UT1 mixed_adult; gambling: UT1 gambling, Sinfonietta gambling, "
        "ShadowWhisperer Gambling; bypass: UT1 vpn and doh, dibdot DoH, NextDNS vpn, proxies, "
        "tor and encrypted-dns, ShadowWhisperer Tunnels. Vietnamese: the names of the group "
        "under `.vn` or with Vietnamese words or bookmaker brand shapes "
        "(`scripts/evalparts.py`, `is_vietnamese`). *As shipped*: the shipped files as they "
        "are; *unseen sites*: the shipped files with every held-aside registrable domain "
        "removed, i.e. what the lists (and the classifier) catch of sites they were never "
        "given.\n\n" + markdown_table(["group", "index", "names", *f.bands], rows)
    )


def false_positive_section(f: Figures) -> str:
    """The share of popular names each band blocks, and the first of them per category."""
    rows = []
    for label, names in f.popular.items():
        blocked = f.false_positives.get(label, {})
        counts = [len(blocked.get(band, {})) for band in f.bands]
        cells = [f"{percent(n, len(names))} ({n:,})" for n in counts]
        rows.append([label, f"{len(names):,}", *cells])
    strictest = f.bands[0]
    detail = []
    for label, names in f.popular.items():
        hits = f.false_positives.get(label, {}).get(strictest, {})
        for category in sorted(set(hits.values())):
            listed = [n for n in names if hits.get(n) == category]
            shown = ", ".join(listed[:FIRST_NAMES]) + (", …" if len(listed) > FIRST_NAMES else "")
            detail.append([label, category, f"{len(listed):,}", shown])
    return (
        "## False positives per band\n\n"
        "The share of popular and educational names each band blocks: the Umbrella top 10,000 "
        "and 100,000 (rank = line), the hosts of the Vietnamese sites of commoncrawl "
        "web-languages, and the world universities' domains (Hipo). Some of the Umbrella names "
        "are rightly blocked (the adult and gambling sites among the most visited). Each "
        "cell: the share (the count).\n\n"
        + markdown_table(["set", "names", *f.bands], rows)
        + f"\nWhat the {strictest} band blocks, per category, the first names in rank order:\n\n"
        + markdown_table(["set", "category", "blocked", "first names"], detail)
    )


def classifier_section(counts: dict[str, int] | None) -> str:
    """Precision and recall of the name classifier, when there is one."""
    head = "## Name classifier\n\n"
    if counts is None:
        return head + (
            "No classifier in this tree (`filterdns.lists.namemodel` is not importable): "
            "every figure above is the lists' alone.\n"
        )
    tp, fp = counts["true_positives"], counts["false_positives"]
    rows = [
        ["held-aside adult and gambling names flagged (recall)",
         f"{tp:,} / {counts['positives']:,}", percent(tp, counts["positives"])],
        ["held-aside top-100k names flagged", f"{fp:,} / {counts['negatives']:,}",
         percent(fp, counts["negatives"])],
        ["precision on the held-aside side", f"{tp:,} / {tp + fp:,}", percent(tp, tp + fp)],
        ["Umbrella top 100k flagged", f"{counts['top_100k_flagged']:,} / {counts['top_100k']:,}",
         percent(counts["top_100k_flagged"], counts["top_100k"])],
    ]  # fmt: skip
    return head + (
        "Names the profiles' Policy puts in `adult-suspect` or `gambling-suspect`, decided on "
        "the unseen-sites index (so a name a list holds is not the classifier's). Negatives: "
        "the held-aside names of the top 100k that no adult or gambling source lists.\n\n"
        + markdown_table(["figure", "names", "share"], rows)
    )


def category_section(f: Figures) -> str:
    """Names per category in the shipped index, and its size."""
    rows = [[c, f"{n:,}"] for c, n in sorted(f.per_category.items())]
    rows.append(["**total**", f"{sum(f.per_category.values()):,}"])
    return (
        "## Categories\n\n"
        "Names per category in the index of the shipped files (entries less repeats; "
        f"`index.bin`: {f.index_bytes:,} bytes). Build time and the memory a process gains "
        "by loading the index vary by machine: `make lists-eval` prints them after this "
        "table.\n\n" + markdown_table(["category", "names"], rows)
    )
