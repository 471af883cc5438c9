"""Thresholds and measurements of the name model, for scripts/train_name_model.py.

Scores are computed with the serving code (filterdns/lists/namemodel.py), so the figures are those
of the model as shipped.
"""

from __future__ import annotations

from datasplit import held_aside

from filterdns.lists import namemodel

# At most 0.1 % of a check list flagged by the model as a whole: each category gets an equal
# share of that budget, so the two together stay within it.
MAX_FLAGGED = 0.001


def _probabilities(model: namemodel.NameModel, names: list[str]) -> list[tuple[float, ...]]:
    found = (model.probabilities(n) for n in names)
    return [p if p is not None else (0.0,) * len(model.categories) for p in found]


def _lowest(scores: list[float], share: float) -> float:
    """The lowest probability (4 decimals) that flags at most `share` of `scores`."""
    allowed = int(len(scores) * share)
    ranked = sorted(scores, reverse=True)
    if allowed >= len(ranked):
        return 0.0
    return min(1.0, round(ranked[allowed], 4) + 0.0001)


def unlisted(names: list[str], positives: dict[str, set[str]]) -> list[str]:
    """The names whose site no positive list holds (a list decides the others)."""
    every = set().union(*positives.values())
    return [n for n in names if namemodel.registrable(n) not in every]


def choose_thresholds(
    model: namemodel.NameModel, positives: dict[str, set[str]], checks: dict[str, list[str]]
) -> dict[str, float]:
    """Per category, the lowest probability flagging at most its share of 0.1 % of each check
    list (and of its held-aside part, which the model never saw)."""
    share = MAX_FLAGGED / len(model.categories)
    groups = []
    for check in checks.values():
        names = unlisted(check, positives)
        groups.append(_probabilities(model, names))
        groups.append(_probabilities(model, [n for n in names if held_aside(n)]))
    return {
        category: max(_lowest([p[i] for p in group], share) for group in groups)
        for i, category in enumerate(model.categories)
    }


def _flagged(model: namemodel.NameModel, names: list[str]) -> str:
    hits = sum(1 for n in names if model.score(n) is not None)
    return f"{hits} of {len(names)} ({100 * hits / max(1, len(names)):.2f} %)"


def _precision_recall(
    model: namemodel.NameModel, positives: set[str], negatives: list[str], index: int
) -> str:
    threshold = model.thresholds[index]
    held = sorted(s for s in positives if held_aside(s))
    found = sum(1 for p in _probabilities(model, held) if p[index] >= threshold)
    false = sum(1 for p in _probabilities(model, negatives) if p[index] >= threshold)
    precision = found / max(1, found + false)
    recall = found / max(1, len(held))
    return (
        f"| {model.categories[index]}-suspect | {threshold:.4f} | {len(held)} | {found} | {false} "
        f"| {100 * precision:.1f} % | {100 * recall:.1f} % |"
    )


def report(
    model: namemodel.NameModel,
    positives: dict[str, set[str]],
    negatives: set[str],
    checks: dict[str, list[str]],
) -> str:
    """The markdown table of thresholds, held-aside precision and recall, and flagged shares."""
    held_negatives = sorted(s for s in negatives if held_aside(s))
    lines = [
        "# Name model: thresholds and measurements",
        "",
        "Written by `.venv/bin/python scripts/train_name_model.py` (do not edit by hand).",
        "",
        f"Held-aside side (scripts/datasplit.py, by registrable domain): {len(held_negatives)} "
        "negative sites; positives per category below. A site counts for a category when its "
        "probability reaches the category's threshold.",
        "",
        "| category | threshold | held-aside positive sites | found | negatives flagged "
        "| precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, category in enumerate(model.categories):
        lines.append(_precision_recall(model, positives[category], held_negatives, i))
    umbrella = checks["umbrella"]
    others = checks["vietnamese+universities"]
    lines += [
        "",
        "Flagged (any category) among names that no list decides, and among all names:",
        "",
        "| check list | no positive list holds the site | all names |",
        "|---|---:|---:|",
    ]
    for label, names in (
        ("Umbrella top 100k", umbrella),
        ("Umbrella top 10k", umbrella[:10000]),
        ("Vietnamese popular sites + world universities", others),
    ):
        lines.append(
            f"| {label} | {_flagged(model, unlisted(names, positives))} "
            f"| {_flagged(model, names)} |"
        )
    return "\n".join(lines) + "\n"
