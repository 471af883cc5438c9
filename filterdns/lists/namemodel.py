"""The name model: a linear classifier of site names for adult and gambling sites no list has yet.

New betting brands and porn sites appear every day under names that tell what they are
(`nhacai88-vip.net`, `sexviet-moi.com`); the lists catch up weeks later. The model scores the
registrable domain of a name that no list decides, from its character n-grams (3 to 5, of the
name without its public suffix), its word and digit runs and its suffix. It is a logistic
regression per category, trained by `scripts/train_name_model.py` on the list data only, and
shipped as `blocklists/name-model.json.gz` with one threshold per category (the lowest score
that flags at most 0.1 % of popular sites; blocklists/SOURCES.md has the figures).

Serving is pure Python: a score is one dict lookup per feature (about forty), and scores are
remembered per registrable domain, so every name of one site costs one scoring.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filterdns.lists.shipped import SHIPPED_DIR
from filterdns.memo import Memo

MODEL_FILE = "name-model.json.gz"
MODEL_FORMAT = 1
NGRAMS = (3, 4, 5)
MEMO_LIMIT = 65536
SUSPECT_SUFFIX = "-suspect"  # adult -> adult-suspect

# Second-level labels under which country-code registries sell names (example.com.vn,
# example.co.uk): the same heuristic as scripts/datasplit.py, since the project ships no copy of
# the Public Suffix List.
_SECOND_LEVEL = frozenset(
    {
        "ac", "co", "com", "edu", "gov", "gob", "govt", "int", "ltd", "mil", "net", "nic", "nom",
        "or", "org", "plc", "sch", "info", "biz", "name", "pro", "health", "ne", "go", "in",
        "web", "firm", "gen", "id", "me", "tv", "blog",
    }
)  # fmt: skip
# Names that are never sites: reverse lookups, local names, service discovery.
_NOT_SITES = frozenset({"arpa", "local", "lan", "home", "internal", "localdomain", "test"})
_RUNS = re.compile(r"[a-z]+|[0-9]+").findall


def split_name(name: str) -> tuple[str, str] | None:
    """(label, suffix) of a name's registrable domain: "a.nhacai88.com.vn" -> ("nhacai88",
    "com.vn"); None for a name that is not a site (one label, reverse lookups, local names)."""
    labels = name.split(".")
    if len(labels) < 2 or labels[-1] in _NOT_SITES or not labels[-1].isalpha():
        return None
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return labels[-3], f"{labels[-2]}.{labels[-1]}"
    return labels[-2], labels[-1]


def registrable(name: str) -> str | None:
    """The registrable domain of a site's name, or None (see `split_name`)."""
    parts = split_name(name)
    return None if parts is None else f"{parts[0]}.{parts[1]}"


def features(label: str, suffix: str) -> list[str]:
    """The features of a registrable domain: n-grams of `^label$`, runs, suffix, length."""
    text = f"^{label}$"
    found = [text[i : i + n] for n in NGRAMS for i in range(len(text) - n + 1)]
    for run in _RUNS(label):
        found.append(("d:" if run[0].isdigit() else "w:") + run)
    found.append("t:" + suffix)
    found.append(f"n:{min(len(label), 24) // 3}")
    found.append(f"h:{label.count('-')}")
    return found


@dataclass(slots=True)
class NameModel:
    """Per-category weights and thresholds; `score` names the best category over threshold."""

    categories: tuple[str, ...]  # list categories ("adult", "gambling")
    bias: tuple[float, ...]
    thresholds: tuple[float, ...]  # a probability per category
    weights: tuple[dict[str, float], ...]  # per category: feature -> weight (zeros left out)
    _memo: Memo[str, tuple[str, float] | None] = field(
        default_factory=lambda: Memo(MEMO_LIMIT), repr=False
    )

    @property
    def suspect_categories(self) -> tuple[str, ...]:
        """The policy categories the model answers with: "adult-suspect", ..."""
        return tuple(c + SUSPECT_SUFFIX for c in self.categories)

    def probabilities(self, name: str) -> tuple[float, ...] | None:
        """The probability of each category for a name's site, or None when it is no site."""
        parts = split_name(name)
        if parts is None:
            return None
        found = features(*parts)
        zeros = _ZEROS
        # map() walks the features in C: one dict lookup per feature and category.
        return tuple(
            _sigmoid(bias + sum(map(weights.get, found, zeros)))
            for bias, weights in zip(self.bias, self.weights, strict=True)
        )

    def score(self, name: str) -> tuple[str, float] | None:
        """(suspect category, probability) of the most likely category over its threshold."""
        site = registrable(name)
        if site is None:
            return None
        try:
            return self._memo[site]
        except KeyError:
            return self._memo.remember(site, self._best(site))

    def _best(self, site: str) -> tuple[str, float] | None:
        probabilities = self.probabilities(site)
        if probabilities is None:
            return None
        best: tuple[str, float] | None = None
        for category, p, threshold in zip(
            self.suspect_categories, probabilities, self.thresholds, strict=True
        ):
            if p >= threshold and (best is None or p > best[1]):
                best = (category, p)
        return best


_ZEROS = itertools.repeat(0.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def from_dict(data: dict[str, Any]) -> NameModel:
    """A model from its JSON form (the layout `scripts/train_name_model.py` writes):
    {"format": 1, "categories": [...], "bias": {c: b}, "thresholds": {c: t},
    "weights": {c: {feature: weight}}}."""
    if data.get("format") != MODEL_FORMAT:
        raise ValueError(f"name model format {data.get('format')!r}, expected {MODEL_FORMAT}")
    categories = tuple(str(c) for c in data["categories"])
    shared: dict[Any, Any] = {}  # one object per feature text and per weight value
    weights = tuple(
        {shared.setdefault(k, str(k)): shared.setdefault(w, float(w)) for k, w in
         data["weights"][c].items()}
        for c in categories
    )  # fmt: skip
    bias = tuple(float(data["bias"][c]) for c in categories)
    thresholds = tuple(float(data["thresholds"][c]) for c in categories)
    return NameModel(categories, bias, thresholds, weights)


def load(path: Path) -> NameModel:
    """Read a model file (gzip-compressed JSON)."""
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        return from_dict(json.load(stream))


_SHIPPED: list[NameModel] = []


def shipped() -> NameModel:
    """The model shipped with the package (blocklists/name-model.json.gz), read once."""
    if not _SHIPPED:
        _SHIPPED.append(load(SHIPPED_DIR / MODEL_FILE))
    return _SHIPPED[0]


def for_config(enabled: bool) -> NameModel | None:
    """The shipped model when `blocking.name_model` is on, else None."""
    return shipped() if enabled else None
