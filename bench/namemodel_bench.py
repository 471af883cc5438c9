"""Benchmark of the name model: load time, memory, and CPU microseconds per unseen name.

    .venv/bin/python bench/namemodel_bench.py [--names 20000] [--runs 7] [--tree DIR] [FILE...]

Loads the shipped model (blocklists/name-model.bin) and times `NameModel.score` on names it has
not seen: the sites of the given files (a name per line, the last field: hosts files and lists
too), by default the Umbrella top 100k of ../shared/data when present (the names no list decides
are the ones the proxy asks about; popular names stand for them), else synthetic ones. Each run uses
a fresh memo, so every name is scored (the worst case: a remembered site costs one dict lookup).
Times are the process's CPU time (user + system), which other work on a busy machine disturbs
less than the clock; prints the median of the runs, per name, then a remembered lookup.

`--tree DIR` measures the filterdns of another checkout (one exported with `git archive`, say)
with the same names: run it alternately with this tree's to compare two versions. Memory is the
growth of the process's VmRSS while the model loads, then what a second load of the same file
allocates and keeps (tracemalloc, which would inflate the first figure).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UMBRELLA = ROOT.parent / "shared" / "data" / "toplists" / "umbrella-top-100k.txt"


def rss_kib() -> int:
    """The process's resident set (VmRSS), KiB; 0 where /proc is not there."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0
    )


def probe_names(registrable: object, count: int, files: list[Path]) -> list[str]:
    """Distinct sites to score: those of `files` (else Umbrella's), else random ones."""
    files = files or ([UMBRELLA] if UMBRELLA.exists() else [])
    if files:
        lines = (line.split("#", 1)[0].split() for f in files for line in f.open(errors="replace"))
        found = map(registrable, (fields[-1].lower() for fields in lines if fields))  # type: ignore[call-overload]
        sites = list(dict.fromkeys(s for s in found if s is not None))
        random.Random(7).shuffle(sites)  # several files: some of each
        return sites[:count]
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
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("files", type=Path, nargs="*", help="names to score")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    from filterdns.lists import namemodel  # noqa: PLC0415  # from the chosen tree
    from filterdns.memo import Memo  # noqa: PLC0415

    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    model = namemodel.shipped()
    loaded = time.perf_counter() - started
    grown = rss_kib() - before
    tracemalloc.start()
    again = namemodel.load(namemodel.SHIPPED_DIR / namemodel.MODEL_FILE)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del again
    print(
        f"load: {loaded * 1000:.0f} ms, VmRSS +{grown / 1024:.1f} MiB; the model holds "
        f"{held / 2**20:.1f} MiB (tracemalloc; {peak / 2**20:.1f} at the peak of loading)"
    )
    names = probe_names(namemodel.registrable, args.names, args.files)
    unseen: list[float] = []
    cached: list[float] = []
    for _ in range(args.runs):
        model._memo = Memo(namemodel.MEMO_LIMIT)
        started = time.process_time()
        for name in names:
            model.score(name)
        unseen.append((time.process_time() - started) / len(names))
        started = time.process_time()
        for name in names:
            model.score(name)
        cached.append((time.process_time() - started) / len(names))
    print(f"{len(names)} names, median of {args.runs} runs (CPU time):")
    print(f"  unseen name: {statistics.median(unseen) * 1e6:.1f} us")
    print(f"  remembered:  {statistics.median(cached) * 1e6:.2f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
