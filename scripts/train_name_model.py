"""Train the name model (blocklists/name-model.bin) from ../shared/data, reproducibly.

    .venv/bin/python scripts/train_name_model.py [--data ../shared/data] [--out blocklists]

Positives per category, negatives (popular and benign sites), both by registrable domain; only
domains on the training side of scripts/datasplit.py are learnt from. One logistic regression per
category (scikit-learn's liblinear, fixed seed; a dev-only dependency: serving is pure Python in
filterdns/lists/namemodel.py). The threshold of a category is the lowest probability that flags
at most its share (half, with two categories) of 0.1 % of the Umbrella top 100k and of the
Vietnamese popular sites and world universities, so the model as a whole flags at most 0.1 %.
Precision and recall are measured on the held-aside side and written to blocklists/name-model.md.
The file is format 2 of filterdns/lists/namemodel.py (the weights in a table of arrays,
lists/nametable.py). Same data and seed: a byte-identical model file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import name_model_eval as evaluation  # noqa: E402
from datasplit import held_aside  # noqa: E402

from filterdns.lists import namemodel  # noqa: E402
from filterdns.lists.parse import iter_file, parse_bytes  # noqa: E402
from filterdns.lists.sourcereport import SourceReport  # noqa: E402

SEED = 20260901
C = 0.5  # inverse regularisation strength (L2)
MIN_COUNT = 3  # a feature seen in fewer training domains is left out
# Smaller weights are not shipped: the model stays about 3 MB on disk and in memory (an L1 fit
# would be sparser but takes many times longer). Weights are kept to 0.001, as the table stores
# them (lists/nametable.py, 16-bit thousandths).
PRUNE = 0.08
CATEGORIES = ("adult", "gambling")
V2FLY = "blocklists/v2fly-domain-list-community/data"
POSITIVES = {
    "adult": [
        "blocklists/sinfonietta/pornography-hosts",
        "blocklists/shadowwhisperer-blocklists/Adult",
        "blocklists/ut1/mixed_adult/domains",
        "blocklists/ut1/lingerie/domains",
        f"v2fly:{V2FLY}/category-porn",
    ],
    "gambling": [
        "blocklists/ut1/gambling/domains",
        "blocklists/sinfonietta/gambling-hosts",
        "blocklists/shadowwhisperer-blocklists/Gambling",
        f"v2fly:{V2FLY}/category-betting-ru",
        "betting-words:blocklists/curbengh-vn-badsite-filter/vn-badsite-filter-domains.txt",
    ],
}
# The Vietnamese scam list (chongluadao) holds betting sites among its fake shops and banks; the
# shared data's README names it as the only source of Vietnamese betting names. Its sites whose
# own name carries a betting word (nha cai, keo, tai xiu, no hu, game bai, xo so, lo de, ca do,
# ban ca, xoc dia, soi cau, bet, casino, slot...) are taken as gambling; the rest of it is left out.
BETTING_WORDS = re.compile(
    r"nhacai|keo|casino|taixiu|tai-xiu|nohu|no-hu|gamebai|game-bai|xoso|xo-so|lode|lo-de|cado"
    r"|ca-do|bet|slot|banca|ban-ca|xocdia|baccarat|poker|jackpot|sicbo|soicau|lottery"
)
# UT1 categories that are neither adult nor gambling (nor close to them: dating, sexual education
# and the French legal betting sites of `arjel` stay out of the negatives).
UT1_NEGATIVES = (
    "audio-video", "bank", "blog", "celebrity", "child", "cleaning", "cooking", "download",
    "educational_games", "examen_pix", "financial", "forums", "games", "jobsearch", "liste_blanche",
    "liste_bu", "manga", "press", "radio", "shopping", "social_networks", "sports", "translation",
    "update", "webmail",
)  # fmt: skip
_V2FLY_EXCLUDED = re.compile(r"porn|hentai|sex|xxx|bet|casino|gambl|lotter")
UMBRELLA = "toplists/umbrella-top-100k.txt"
UNIVERSITIES = "toplists/hipo-university-domains-list/world_universities_and_domains.json"
VIETNAMESE = "toplists/commoncrawl-web-languages/vietnamese.md"


def read_list(path: Path) -> Iterator[str]:
    """The block entries of one list file, read with the project's parser."""
    for name, allow in iter_file(path, SourceReport(str(path))):
        if not allow:
            yield name


def v2fly_rules(path: Path, seen: set[str]) -> Iterator[str]:
    """The plain names of a v2fly file and its includes (regexp and keyword rules left out)."""
    if path.name in seen or not path.exists():
        return
    seen.add(path.name)
    for raw in path.read_text(encoding="utf-8").splitlines():
        rule = raw.split("#", 1)[0].split(" @", 1)[0].strip()
        if rule.startswith("include:"):
            yield from v2fly_rules(path.parent / rule[8:].strip(), seen)
        elif rule and not rule.startswith(("regexp:", "keyword:")):
            yield rule.removeprefix("full:").removeprefix("domain:")


def v2fly_names(path: Path, seen: set[str]) -> list[str]:
    """A v2fly file's names, through the project's parser."""
    data = "\n".join(v2fly_rules(path, seen)).encode()
    return [name for name, allow in parse_bytes(data, str(path))[0] if not allow]


def source_names(data: Path, source: str) -> list[str]:
    """The names of one source: a list file, or "v2fly:<file>" with its includes."""
    if source.startswith("v2fly:"):
        return v2fly_names(data / source[6:], set())
    if source.startswith("betting-words:"):
        names = read_list(data / source.partition(":")[2])
        return [n for n in names if BETTING_WORDS.search((namemodel.split_name(n) or ("",))[0])]
    return list(read_list(data / source))


def v2fly_negatives(data: Path) -> list[str]:
    """The per-service v2fly lists, less those reached from porn or betting files."""
    directory = data / V2FLY
    reached: set[str] = set()
    for source in ("category-porn", "category-betting-ru"):
        list(v2fly_rules(directory / source, reached))
    names: list[str] = []
    for path in sorted(directory.iterdir()):
        if path.name in reached or _V2FLY_EXCLUDED.search(path.name):
            continue
        names.extend(v2fly_names(path, set(reached)))
    return names


def universities(data: Path) -> list[str]:
    """Every domain of the world universities list."""
    entries = json.loads((data / UNIVERSITIES).read_text(encoding="utf-8"))
    return [d.strip().lower() for e in entries for d in e["domains"]]


def vietnamese(data: Path) -> list[str]:
    """The hosts of the Vietnamese popular sites (markdown links)."""
    text = (data / VIETNAMESE).read_text(encoding="utf-8")
    return [h.lower() for h in re.findall(r"https?://([A-Za-z0-9.-]+)", text)]


def sites(names: Iterable[str]) -> set[str]:
    """The registrable domains of names (names that are no site are dropped)."""
    return {s for s in map(namemodel.registrable, names) if s is not None}


def load_data(data: Path) -> tuple[dict[str, set[str]], set[str], dict[str, list[str]]]:
    """(positive sites per category, negative sites, the names of each check list)."""
    positives = {c: set[str]() for c in CATEGORIES}
    listed: set[str] = set()  # names a positive list holds, as listed
    for category, sources in POSITIVES.items():
        for source in sources:
            names = source_names(data, source)
            listed.update(names)
            positives[category].update(sites(names))
    checks = {
        "umbrella": [n.strip() for n in (data / UMBRELLA).read_text().splitlines() if n.strip()],
        "vietnamese+universities": vietnamese(data) + universities(data),
    }
    negative_names = list(checks["umbrella"]) + checks["vietnamese+universities"]
    for category in UT1_NEGATIVES:
        negative_names.extend(read_list(data / "blocklists/ut1" / category / "domains"))
    negative_names.extend(v2fly_negatives(data))
    negatives = sites(negative_names)
    # A site with many names (hosting, CDNs) is in both: a listed subdomain does not make the
    # whole site a positive unless the site itself is listed.
    for category in CATEGORIES:
        positives[category] = {s for s in positives[category] if s not in negatives or s in listed}
    every_positive = set().union(*positives.values())
    return positives, negatives - every_positive, checks


def vocabulary(examples: list[list[str]]) -> dict[str, int]:
    """Features seen in at least MIN_COUNT training domains, in sorted order."""
    counts: dict[str, int] = {}
    for feats in examples:
        for f in set(feats):
            counts[f] = counts.get(f, 0) + 1
    kept = sorted(f for f, n in counts.items() if n >= MIN_COUNT)
    return {f: i for i, f in enumerate(kept)}


def matrix(examples: list[list[str]], vocab: dict[str, int]) -> sparse.csr_matrix:
    """Binary feature matrix of the examples."""
    rows: list[int] = []
    cols: list[int] = []
    for row, feats in enumerate(examples):
        for col in sorted({vocab[f] for f in feats if f in vocab}):
            rows.append(row)
            cols.append(col)
    values = np.ones(len(rows), dtype=np.float64)
    return sparse.csr_matrix((values, (rows, cols)), shape=(len(examples), len(vocab)))


def train(
    positives: dict[str, set[str]], negatives: set[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(bias, feature -> weight) per category: one logistic regression each."""
    domains = sorted(set().union(negatives, *positives.values()))
    domains = [d for d in domains if not held_aside(d)]
    examples = [namemodel.features(*namemodel.split_name(d)) for d in domains]  # type: ignore[misc]
    vocab = vocabulary(examples)
    x = matrix(examples, vocab)
    features = list(vocab)
    bias: dict[str, float] = {}
    weights: dict[str, dict[str, float]] = {}
    for category in CATEGORIES:
        y = np.array([d in positives[category] for d in domains], dtype=np.int8)
        print(f"  {category}: {int(y.sum())} positive of {len(y)} training sites", flush=True)
        model = LogisticRegression(C=C, solver="liblinear", random_state=SEED, max_iter=300)
        model.fit(x, y)
        bias[category] = round(float(model.intercept_[0]), 4)
        coef = model.coef_[0]
        weights[category] = {
            features[i]: round(float(coef[i]), 3) for i in np.flatnonzero(np.abs(coef) >= PRUNE)
        }
    return bias, weights


def main() -> int:
    """Train, choose the thresholds, measure, write the model and its report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "blocklists")
    args = parser.parse_args()
    started = time.monotonic()
    positives, negatives, checks = load_data(args.data)
    print(f"sites: {len(negatives)} negative, " + ", ".join(
        f"{len(s)} {c}" for c, s in positives.items()), flush=True)  # fmt: skip
    bias, weights = train(positives, negatives)
    data: dict[str, object] = {
        "categories": list(CATEGORIES),
        "bias": bias,
        "weights": weights,
        "thresholds": dict.fromkeys(CATEGORIES, 1.0),
    }
    model = namemodel.from_dict(data)
    thresholds = evaluation.choose_thresholds(model, positives, checks)
    chosen = tuple(thresholds[c] for c in CATEGORIES)
    model = namemodel.NameModel(model.categories, model.bias, chosen, model.table)
    report = evaluation.report(model, positives, negatives, checks)
    out = args.out / namemodel.MODEL_FILE
    about = {"seed": SEED, "trained_on": "../shared/data (see blocklists/SOURCES.md, 'Name model')"}
    out.write_bytes(namemodel.to_bytes(model, about))
    seconds = time.monotonic() - started
    size = out.stat().st_size
    count = model.table.count()
    report += f"\nModel: {count} weights, {size:,} bytes.\n"
    (args.out / "name-model.md").write_text(report, encoding="utf-8")
    print(report)
    print(f"trained in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
