"""Benchmark of the name model: load time, memory, and microseconds per unseen name.

    .venv/bin/python bench/namemodel_bench.py [--names 20000] [--runs 7]

Loads the shipped model (blocklists/name-model.json.gz) and times `NameModel.score` on names it
has not seen: the Umbrella top 100k of ../shared/data when present (the names no list decides
are the ones the proxy asks about; popular names stand for them), else synthetic ones. Each run
uses a fresh memo, so every name is scored (the worst case: a remembered site costs one dict
lookup). Prints the median of the runs, per name; then a cached lookup for comparison.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filterdns.lists import namemodel  # noqa: E402
from filterdns.memo import Memo  # noqa: E402

UMBRELLA = ROOT.parent / "shared" / "data" / "toplists" / "umbrella-top-100k.txt"


def probe_names(count: int) -> list[str]:
    """Distinct sites to score: Umbrella's, else random ones."""
    if UMBRELLA.exists():
        sites = dict.fromkeys(
            s for s in map(namemodel.registrable, UMBRELLA.read_text().split()) if s is not None
        )
        return list(sites)[:count]
    rng = random.Random(7)
    letters = string.ascii_lowercase + string.digits
    return [
        "".join(rng.choices(letters, k=rng.randint(5, 16))) + rng.choice((".com", ".vn", ".net"))
        for _ in range(count)
    ]


def main() -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    model = namemodel.shipped()
    loaded = time.perf_counter() - started
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    weights = sum(len(w) for w in model.weights)
    print(f"load: {loaded:.2f} s, {weights} weights, +{grown / 1024:.0f} MiB peak RSS")
    names = probe_names(args.names)
    unseen: list[float] = []
    cached: list[float] = []
    for _ in range(args.runs):
        model._memo = Memo(namemodel.MEMO_LIMIT)
        started = time.perf_counter()
        for name in names:
            model.score(name)
        unseen.append((time.perf_counter() - started) / len(names))
        started = time.perf_counter()
        for name in names:
            model.score(name)
        cached.append((time.perf_counter() - started) / len(names))
    print(f"{len(names)} names, median of {args.runs} runs:")
    print(f"  unseen name: {statistics.median(unseen) * 1e6:.1f} us")
    print(f"  remembered:  {statistics.median(cached) * 1e6:.2f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
