"""The name model: a linear classifier of site names for adult and gambling sites no list has yet.

New betting brands and porn sites appear every day under names that tell what they are
(`nhacai88-vip.net`, `sexviet-moi.com`); the lists catch up weeks later. The model scores the
registrable domain of a name that no list decides, from its character n-grams (3 to 5, of the
name without its public suffix), its word and digit runs and its suffix. It is a logistic
regression per category, trained by `scripts/train_name_model.py` on the list data only, and
shipped as `blocklists/name-model.bin` with one threshold per category (the lowest score that
flags at most 0.1 % of popular sites; blocklists/SOURCES.md has the figures).

Serving is pure Python: the weights live in a few arrays (`lists.nametable`, about 3 MB), a
score is a handful of C-level passes over the site's forty-odd features, and scores are
remembered per registrable domain, so every name of one site costs one scoring.

The file (format 2): `MAGIC`, the format, the length and CRC-32 of a JSON header (categories,
bias, thresholds, what it was trained on) and the header, then the weight table
(`nametable.read`, with its own CRC-32). It loads in a few
milliseconds. Format 1 (gzip-compressed JSON of dicts, 34 MB once loaded) is refused.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import repeat
from operator import and_, mod, rshift
from pathlib import Path
from typing import Any, BinaryIO, Literal

from filterdns.lists import nametable
from filterdns.lists.nametable import WeightTable
from filterdns.lists.shipped import SHIPPED_DIR
from filterdns.memo import Memo

MODEL_FILE = "name-model.bin"
MODEL_FORMAT = 2
MAGIC = b"filterdns name model\n"
_LENGTH = struct.Struct("<HII")  # format, length and CRC-32 of the JSON header
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
    """The features of a registrable domain: n-grams of `^label$`, runs, suffix, length, hyphens
    (three at least)."""
    text = f"^{label}$"
    found = [text[i : i + n] for n in NGRAMS for i in range(len(text) - n + 1)]
    for run in _RUNS(label):
        found.append(("d:" if run[0].isdigit() else "w:") + run)
    found.append("t:" + suffix)
    found.append(f"n:{min(len(label), 24) // 3}")
    found.append(f"h:{label.count('-')}")
    return found


def feature_keys(label: str, suffix: str) -> list[int]:
    """The table keys of `features(label, suffix)` (`nametable.key` of each, in another order).

    The n-grams of an ASCII label are not made as strings: each one's key is its bytes read
    as an integer, so it is cut out of the whole `^label$` read as one integer (a shift and a
    mask per n-gram, in C). The few other features go through `nametable.key`."""
    if not label.isascii():
        return list(map(nametable.key, features(label, suffix)))
    size = len(label) + 2
    shifts, masks = _NGRAM_CUTS[size] if size < len(_NGRAM_CUTS) else _ngram_cuts(size)
    text = int.from_bytes(f"^{label}$".encode(), "little")
    keys = list(map(and_, map(rshift, repeat(text), shifts), masks))
    rest = [("d:" if run[0].isdigit() else "w:") + run for run in _RUNS(label)]
    rest += ("t:" + suffix, f"n:{min(len(label), 24) // 3}", f"h:{label.count('-')}")
    keys += map(mod, map(int.from_bytes, map(str.encode, rest), _ORDER), _PRIMES)
    return keys


def _ngram_cuts(size: int) -> tuple[list[int], list[int]]:
    """The shifts and masks that cut the n-grams out of a `size`-byte text read as an integer."""
    shifts = [_SHIFTS[i] if i < len(_SHIFTS) else 8 * i for i in range(size)]
    cuts = [(shifts[i], _MASKS[n]) for n in NGRAMS for i in range(size - n + 1)]
    return [shift for shift, _ in cuts], [mask for _, mask in cuts]


_SHIFTS = [8 * i for i in range(66)]  # one int object each, shared by the tables below
_MASKS = {n: (1 << 8 * n) - 1 for n in NGRAMS}
_NGRAM_CUTS = [_ngram_cuts(size) for size in range(66)]  # labels are 63 bytes at most
_ORDER: repeat[Literal["little"]] = repeat("little")
_PRIMES = repeat(nametable.PRIME)


@dataclass(slots=True)
class NameModel:
    """Per-category weights and thresholds; `score` names the best category over threshold."""

    categories: tuple[str, ...]  # list categories ("adult", "gambling")
    bias: tuple[float, ...]
    thresholds: tuple[float, ...]  # a probability per category
    table: WeightTable  # per category: feature -> weight
    _memo: Memo[str, tuple[str, float] | None] = field(
        default_factory=lambda: Memo(MEMO_LIMIT), repr=False
    )
    # The policy categories the model answers with ("adult-suspect", ...), made once.
    suspect_categories: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.suspect_categories = tuple(c + SUSPECT_SUFFIX for c in self.categories)

    def probabilities(self, name: str) -> tuple[float, ...] | None:
        """The probability of each category for a name's site, or None when it is no site."""
        parts = split_name(name)
        if parts is None:
            return None
        sums = self.table.sums(feature_keys(*parts))
        return tuple(_sigmoid(b + s) for b, s in zip(self.bias, sums, strict=True))

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


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def from_dict(data: Mapping[str, Any]) -> NameModel:
    """A model from the training's dict form: {"categories": [...], "bias": {c: b},
    "thresholds": {c: t}, "weights": {c: {feature: weight}}} (weights kept to 0.001)."""
    categories = tuple(str(c) for c in data["categories"])
    table = nametable.build([data["weights"][c] for c in categories])
    bias = tuple(float(data["bias"][c]) for c in categories)
    thresholds = tuple(float(data["thresholds"][c]) for c in categories)
    return NameModel(categories, bias, thresholds, table)


def to_bytes(model: NameModel, about: Mapping[str, object] | None = None) -> bytes:
    """The model file's bytes (format 2), `about` (seed, data) in its header; the same model
    always gives the same bytes."""
    header = {
        **(about or {}),
        "categories": list(model.categories),
        "bias": list(model.bias),
        "thresholds": list(model.thresholds),
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head = _LENGTH.pack(MODEL_FORMAT, len(text), zlib.crc32(text))
    return MAGIC + head + text + model.table.to_bytes()


def load(path: Path) -> NameModel:
    """Read a model file (format 2); ValueError naming the file when it is not one."""
    with path.open("rb") as stream:
        try:
            return _read(stream)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"name model {path}: {error}") from None


def _read(stream: BinaryIO) -> NameModel:
    start = stream.read(len(MAGIC) + _LENGTH.size)
    if start.startswith(b"\x1f\x8b"):
        raise ValueError(
            "format 1 (gzip-compressed JSON) is no longer read: retrain with "
            f"scripts/train_name_model.py for format {MODEL_FORMAT}"
        )
    if not start.startswith(MAGIC) or len(start) < len(MAGIC) + _LENGTH.size:
        raise ValueError("not a name model file")
    version, length, crc = _LENGTH.unpack(start[len(MAGIC) :])
    if version != MODEL_FORMAT:
        raise ValueError(f"format {version}, expected {MODEL_FORMAT}")
    text = stream.read(length)
    if zlib.crc32(text) != crc:
        raise ValueError("damaged (the header's CRC-32 does not match)")
    header = json.loads(text)
    table = nametable.read(stream)
    categories = tuple(str(c) for c in header["categories"])
    bias = tuple(float(b) for b in header["bias"])
    thresholds = tuple(float(t) for t in header["thresholds"])
    if not len(categories) == len(bias) == len(thresholds) == len(table.weights):
        raise ValueError("the header and the weight table disagree on the categories")
    return NameModel(categories, bias, thresholds, table)


_SHIPPED: list[NameModel] = []


def shipped() -> NameModel:
    """The model shipped with the package (blocklists/name-model.bin), read once."""
    if not _SHIPPED:
        _SHIPPED.append(load(SHIPPED_DIR / MODEL_FILE))
    return _SHIPPED[0]


def for_config(enabled: bool) -> NameModel | None:
    """The shipped model when `blocking.name_model` is on, else None."""
    return shipped() if enabled else None
