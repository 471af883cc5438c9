#!/usr/bin/env python3
"""Measure the category lists (and the name classifier, when there is one) per age band.

    python scripts/lists_eval.py               # write blocklists/EVAL.md and print it
    python scripts/lists_eval.py --data DIR    # the copied public lists (default below)
    python scripts/lists_eval.py --out FILE    # write elsewhere ("-": print only)

This is the measure every change to the lists or the bands is judged by (`make lists-eval`).
It uses the project's public pieces only, so it keeps working as they change: the index is
built by `catalog.ListSet` from the shipped list files (the remote defaults left out), and
every name is decided by the real `policy.decisions.Policy`, built as the server builds it,
for one profile per built-in band at a fixed instant outside any bedtime (a Wednesday 12:00
in the profiles' zone), so only the categories count. A name classifier, when the package
has one, takes part through that Policy.

Recall is measured on the held-aside side of the list data (`scripts/datasplit.py`): names
whose registrable domain is held aside. "As shipped" uses the shipped files as they are (they
may hold those names); "unseen sites" uses the shipped files with every held-aside
registrable domain removed, so it says what lists and classifier catch of sites they were
never given. False positives are the share of popular and university names blocked.

EVAL.md is deterministic except its date line; the machine-dependent figures (build time,
resident memory, the run time) are printed after it, not written.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO), str(Path(__file__).resolve().parent)):
    if _path not in sys.path:  # run as `python scripts/lists_eval.py` from a checkout
        sys.path.insert(0, _path)

from datasplit import held_aside, registrable  # noqa: E402
from evalparts import is_vietnamese, link_hosts, v2fly_names  # noqa: E402
from evalreport import Figures, render  # noqa: E402

from filterdns.config import SHIPPED_PREFIX, Config, load_config_text  # noqa: E402
from filterdns.config.bands import BANDS  # noqa: E402
from filterdns.lists.catalog import ListSet  # noqa: E402
from filterdns.lists.index import DomainIndex  # noqa: E402
from filterdns.lists.parse import iter_file, parse_bytes  # noqa: E402
from filterdns.lists.shipped import shipped_path  # noqa: E402
from filterdns.lists.sourcereport import SourceReport  # noqa: E402
from filterdns.policy.decisions import Policy  # noqa: E402
from filterdns.policy.values import BLOCKING_ACTIONS  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "blocklists" / "EVAL.md"
ZONE = "Asia/Ho_Chi_Minh"
# Wednesday 2026-01-07 12:00 in ZONE (UTC+7, no daylight saving): no built-in bedtime is on.
NOON_WEDNESDAY = 1767762000.0
SUSPECT = ("adult-suspect", "gambling-suspect")  # the classifier's categories

BL = "blocklists"
GROUPS: dict[str, tuple[str, ...]] = {
    "adult": (
        f"{BL}/sinfonietta/pornography-hosts",
        f"{BL}/shadowwhisperer-blocklists/Adult",
        "v2fly:category-porn",
        f"{BL}/ut1/mixed_adult/domains",
    ),
    "gambling": (
        f"{BL}/ut1/gambling/domains",
        f"{BL}/sinfonietta/gambling-hosts",
        f"{BL}/shadowwhisperer-blocklists/Gambling",
    ),
    "bypass": (
        f"{BL}/ut1/vpn/domains",
        f"{BL}/ut1/doh/domains",
        f"{BL}/dibdot-doh/doh-domains_overall.txt",
        f"{BL}/nextdns-dns-bypass-methods/vpn",
        f"{BL}/nextdns-dns-bypass-methods/proxies",
        f"{BL}/nextdns-dns-bypass-methods/tor",
        f"{BL}/nextdns-dns-bypass-methods/encrypted-dns",
        f"{BL}/shadowwhisperer-blocklists/Tunnels",
    ),
}
"""Evaluation group -> its sources in the data directory ("v2fly:<file>" for the v2fly DSL)."""

UMBRELLA = "toplists/umbrella-top-100k.txt"
VIETNAMESE_SITES = "toplists/commoncrawl-web-languages/vietnamese.md"
UNIVERSITIES = "toplists/hipo-university-domains-list/world_universities_and_domains.json"


# Reading the data


def source_names(data: Path, source: str) -> list[str]:
    """The block entries of one source, normalised by the project's own parser."""
    if source.startswith("v2fly:"):
        raw = v2fly_names(data / BL / "v2fly-domain-list-community" / "data", source[6:])
        entries, _report = parse_bytes("\n".join(raw).encode(), source)
        return [name for name, allow in entries if not allow]
    report = SourceReport(source)
    return [name for name, allow in iter_file(data / source, report) if not allow]


def held_aside_groups(data: Path) -> dict[str, list[str]]:
    """Group -> its held-aside names, then "<group> (Vietnamese)" -> their Vietnamese subset."""
    groups: dict[str, list[str]] = {}
    for group, sources in GROUPS.items():
        names = {n for s in sources for n in source_names(data, s) if held_aside(n)}
        groups[group] = sorted(names)
    for group in GROUPS:
        groups[f"{group} (Vietnamese)"] = [
            n for n in groups[group] if is_vietnamese(n, registrable)
        ]
    return groups


def popular_sets(data: Path) -> dict[str, list[str]]:
    """The false-positive sets: popular names, Vietnamese sites, universities, in rank order."""
    umbrella = (data / UMBRELLA).read_text(encoding="utf-8").split()
    hosts = link_hosts((data / VIETNAMESE_SITES).read_text(encoding="utf-8"))
    universities = json.loads((data / UNIVERSITIES).read_text(encoding="utf-8"))
    domains = [d.strip().lower() for u in universities for d in u.get("domains", [])]
    return {
        "Umbrella top 10k": _normal(umbrella[:10_000]),
        "Umbrella top 100k": _normal(umbrella[:100_000]),
        "Vietnamese sites": _normal(hosts),
        "world universities": _normal(domains),
    }


def _normal(names: Sequence[str]) -> list[str]:
    entries, _report = parse_bytes("\n".join(names).encode(), "names")
    return list(dict.fromkeys(name for name, allow in entries if not allow))


# The index and the policy


def config_for(cache_dir: Path, categories: dict[str, list[str]] | None = None) -> Config:
    """One profile per built-in band in ZONE; the shipped lists (or `categories`) only."""
    profiles = "".join(f"  band-{b}: {{age_band: {b}, timezone: {ZONE}}}\n" for b in BANDS)
    text = (
        f"server: {{timezone: {ZONE}}}\n"
        f"lists: {{download_defaults: false, cache_dir: {json.dumps(str(cache_dir))}}}\n"
        f"profiles:\n{profiles}default_profile: band-adult\n"
    )
    if categories:
        text += f"categories: {json.dumps(categories)}\n"
    return load_config_text(text, "lists-eval")


@dataclass
class Built:
    """An index built by ListSet, the policy over it, and what the build reported."""

    config: Config
    index: DomainIndex
    policy: Policy
    seconds: float
    per_category: dict[str, int]
    path: Path


def build(config: Config) -> Built:
    """Build the index of `config`'s lists as the server does, and a Policy over it."""
    listset = ListSet(config.lists, config.categories)
    result = listset.build()
    index = result.index
    per_category: dict[str, int] = {}
    for status in result.sources:
        kept = status.report.entries - status.report.duplicates
        per_category[status.category] = per_category.get(status.category, 0) + kept
    # The name model as the server takes it (blocking.name_model), when the package has one.
    model = namemodel.for_config(config.blocking.name_model) if namemodel else None
    policy = Policy(config, lambda: index, tuple, model)
    path = Path(config.lists.cache_dir) / "index.bin"
    return Built(config, index, policy, result.seconds, per_category, path)


def unseen_config(shipped: Built, work: Path) -> Config:
    """The shipped lists with every held-aside registrable domain removed, as local files."""
    listset = ListSet(shipped.config.lists, shipped.config.categories)
    categories: dict[str, list[str]] = {}
    for category, source in listset.pairs:
        if not source.startswith(SHIPPED_PREFIX):
            continue
        entries = iter_file(shipped_path(source), SourceReport(source))
        lines = [f"@@||{n}^" if allow else n for n, allow in entries if not held_aside(n)]
        path = work / f"{category}--{source[len(SHIPPED_PREFIX) :]}"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        categories.setdefault(category, []).append(str(path))
    return config_for(work / "cache", categories)


def blocked_by(policy: Policy, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """Band -> {name: category} of the names that band's profile blocks at NOON_WEDNESDAY."""
    out: dict[str, dict[str, str]] = {}
    for band in BANDS:
        hits: dict[str, str] = {}
        for name in names:
            decision = policy.decide(f"band-{band}", name, NOON_WEDNESDAY)
            if decision.action in BLOCKING_ACTIONS:
                hits[name] = decision.category or "(none)"
        out[band] = hits
    return out


def flagged(policy: Policy, names: Sequence[str]) -> set[str]:
    """The names the classifier puts in a suspect category (judged for the adult band's
    profile too: a band that does not block a category still reports the decision)."""
    out: set[str] = set()
    for name in names:
        decision = policy.decide("band-under-9", name, NOON_WEDNESDAY)
        if decision.category in SUSPECT:
            out.add(name)
    return out


try:
    from filterdns.lists import namemodel
except ImportError:  # a version without the name model
    namemodel = None  # type: ignore[assignment]


def has_classifier() -> bool:
    """Whether the package has the on-device name classifier."""
    try:
        __import__("filterdns.lists.namemodel")
    except ImportError:
        return False
    return True


_RSS_CHILD = """
import json, sys
from pathlib import Path
from filterdns.lists.index import DomainIndex
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
names = Path(sys.argv[2]).read_text().split()
before = rss()
index = DomainIndex.open(Path(sys.argv[1]))
opened = rss()
for name in names:
    index.match(name)
print(json.dumps({"open": opened - before, "lookups": rss() - before}))
"""


def rss_growth(index_path: Path, names: Sequence[str], work: Path) -> dict[str, int]:
    """Resident memory a fresh process gains opening the index, and after looking `names` up."""
    probe = work / "probe-names.txt"
    probe.write_text("\n".join(names), encoding="utf-8")
    command = [sys.executable, "-c", _RSS_CHILD, str(index_path), str(probe)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    result: dict[str, int] = json.loads(done.stdout)
    return result


def data_date() -> str:
    """The date of the newest source data in the shipped files' headers."""
    dates = [
        line.split(":", 1)[1].strip()
        for path in sorted((REPO / "blocklists").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()[:12]
        if line.startswith("# Date:")
    ]
    return max(dates, default="unknown")


def measure(data: Path, work: Path) -> tuple[Figures, dict[str, float]]:
    """Every figure of EVAL.md, and the machine-dependent ones apart."""
    groups = held_aside_groups(data)
    popular = popular_sets(data)
    shipped = build(config_for(work / "shipped"))
    (work / "unseen").mkdir()
    (work / "unseen" / "cache").mkdir()
    unseen = build(unseen_config(shipped, work / "unseen"))
    figures = Figures(date=data_date(), bands=BANDS, groups={k: len(v) for k, v in groups.items()})
    for group, names in groups.items():
        figures.recall[(group, "as shipped")] = blocked_by(shipped.policy, names)
        figures.recall[(group, "unseen sites")] = blocked_by(unseen.policy, names)
    for label, names in popular.items():
        figures.popular[label] = names
        figures.false_positives[label] = blocked_by(shipped.policy, names)
    figures.per_category = shipped.per_category
    figures.index_bytes = shipped.path.stat().st_size
    if has_classifier():
        figures.classifier = classifier_figures(unseen.policy, groups, popular)
    rss = rss_growth(shipped.path, popular["Umbrella top 100k"], work)
    machine = {
        "build_seconds": shipped.seconds,
        "rss_open": rss["open"],
        "rss_lookups": rss["lookups"],
    }
    return figures, machine


def classifier_figures(
    policy: Policy, groups: dict[str, list[str]], popular: dict[str, list[str]]
) -> dict[str, int]:
    """Counts for precision and recall on the held-aside side, and the top-100k share flagged.

    Positives: held-aside adult and gambling names; negatives: the held-aside names of the
    top 100k that no adult or gambling source lists. Decided on the unseen-sites index.
    """
    positives = set(groups["adult"]) | set(groups["gambling"])
    top = popular["Umbrella top 100k"]
    negatives = [n for n in top if held_aside(n) and n not in positives]
    flagged_pos = flagged(policy, sorted(positives))
    flagged_neg = flagged(policy, negatives)
    return {
        "positives": len(positives),
        "negatives": len(negatives),
        "true_positives": len(flagged_pos),
        "false_positives": len(flagged_neg),
        "top_100k": len(top),
        "top_100k_flagged": len(flagged(policy, top)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, write EVAL.md, print it and the machine-dependent figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared list data")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help='EVAL.md path ("-": print only)')
    args = parser.parse_args(argv)
    if not (args.data / UMBRELLA).is_file() or not (args.data / BL).is_dir():
        print(
            f"lists-eval: no list data at {args.data} (expected {BL}/ and {UMBRELLA}); "
            "point --data at a copy of shared/data",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lists-eval-") as tmp:
        figures, machine = measure(args.data, Path(tmp))
    text = render(figures)
    if args.out != "-":
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    print(
        f"index build (shipped lists): {machine['build_seconds']:.2f} s; resident memory "
        f"added by opening the index: {machine['rss_open'] / 2**20:.1f} MiB, after looking up "
        f"the top 100k: {machine['rss_lookups'] / 2**20:.1f} MiB; "
        f"run: {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
