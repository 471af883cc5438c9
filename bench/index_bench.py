"""Benchmark of the compact domain index: build time, memory, lookup time, false positives.

    python bench/index_bench.py [--names 1000000] [--workdir DIR]

The names are real ones from the shared blocklists (StevenBlack hosts, Sinfonietta hostfiles,
UT1 domain lists), read in place, topped up with synthetic names until there are `--names`
distinct names, split across 15 lists by source. They are written once to text files in a
temporary directory (one file per list); every measurement then runs in a fresh process that
streams those files, so the names themselves never count towards the index's memory.

Measurements (one subprocess each):

* build        stream the 15 files into an `IndexBuilder` spilling to the work directory, write
               and map the index file; seconds, peak RSS above the process baseline (VmHWM
               after resetting it, and ru_maxrss), file size.
* build-traced the same build under tracemalloc: the peak of Python allocations.
* build-memory the same build kept in memory (no file, no spill), for comparison.
* rebuild      the running proxy's case: an index serves (opened, 100k lookups) while a new one
               is built; swap, close the old one. Peak RSS against the steady RSS; once with
               `spill_dir` and once without.
* steady       open the file and run 100k lookups; RSS above the baseline (probe names loaded
               before the baseline is taken).
* lookup       median of 5 runs of 100k lookups of listed subdomains and of unlisted names.
* fp           1M names known not to be listed (the Umbrella top 100k minus listed names, plus
               random names); every match is a false positive.
* pyset        for comparison: the RSS of a Python set of the same names.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import string
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo, false_positive_rate

DATA = Path("/work/shared/data")
BLOCKLISTS = DATA / "blocklists"
TOPLIST = DATA / "toplists" / "umbrella-top-100k.txt"

# (category, source file relative to BLOCKLISTS, allow)
SOURCES: list[tuple[str, str, bool]] = [
    ("ads-malware", "stevenblack-unified_via-hagezi/stevenblack.hosts.txt", False),
    ("adult", "sinfonietta/pornography-hosts", False),
    ("gambling", "sinfonietta/gambling-hosts", False),
    ("social", "sinfonietta/social-hosts", False),
    ("malware", "ut1/malware/domains", False),
    ("phishing", "ut1/phishing/domains", False),
    ("redirector", "ut1/redirector/domains", False),
    ("jobsearch", "ut1/jobsearch/domains", False),
    ("shopping", "ut1/shopping/domains", False),
    ("games", "ut1/games/domains", False),
    ("gambling", "ut1/gambling/domains", False),
    ("cryptojacking", "ut1/cryptojacking/domains", False),
    ("bank", "ut1/bank/domains", True),
    ("dating", "ut1/dating/domains", False),
    ("vpn", "ut1/vpn/domains", False),
]
LOOKUPS = 100_000
RUNS = 5
UNLISTED = 1_000_000
MB = 1024 * 1024


# ---------------------------------------------------------------- preparing the name files


def _read_source(path: Path) -> Iterator[str]:
    """Names from a hosts file ("0.0.0.0 name") or a plain domain list, minimally cleaned."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            name = fields[1] if len(fields) > 1 and fields[0] in ("0.0.0.0", "127.0.0.1") else ""
            name = (name or fields[0]).lower().rstrip(".")
            if "." not in name or "/" in name or ":" in name:
                continue
            if name.rsplit(".", 1)[1].isdigit():  # an IPv4 address
                continue
            yield name


def _suffixes(name: str) -> list[str]:
    """The name and each parent that still has a dot (what a lookup probes)."""
    out = [name]
    while True:
        name = name.split(".", 1)[1]
        if "." not in name:
            return out
        out.append(name)


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10)))


def prepare(workdir: Path, total: int) -> dict[str, Any]:
    """Write the list files and the probe files; return what the workers need to know."""
    rng = random.Random(20240601)
    # Repeats within a source are kept, as the builder sees them in real files.
    per_list: list[list[str]] = [[] for _ in SOURCES]
    everything: set[str] = set()
    for i, (_, source, _) in enumerate(SOURCES):
        for name in _read_source(BLOCKLISTS / source):
            if name not in everything:
                if len(everything) >= total:
                    continue
                everything.add(name)
            per_list[i].append(name)  # a name already in another list is one more entry
    real = len(everything)
    tlds = ["com", "net", "org", "info", "xyz", "top", "co.uk", "de", "fr", "io"]
    while len(everything) < total:
        name = f"{_word(rng)}{rng.randint(0, 999)}.{_word(rng)}-{_word(rng)}.{rng.choice(tlds)}"
        if name not in everything:
            everything.add(name)
            per_list[rng.randrange(len(SOURCES))].append(name)

    lists_dir = workdir / "lists"
    lists_dir.mkdir(parents=True, exist_ok=True)
    entries = 0
    for i, names in enumerate(per_list):
        rng.shuffle(names)
        (lists_dir / f"{i:02}.txt").write_text("".join(n + "\n" for n in names))
        entries += len(set(names))

    listed = sorted(everything)
    hits = [
        f"{rng.choice(['www', 'cdn', 'api', _word(rng)])}.{name}"
        for name in rng.sample(listed, min(LOOKUPS, len(listed)))
    ]
    (workdir / "listed.txt").write_text("".join(n + "\n" for n in hits))

    def unlisted(name: str) -> bool:
        return "." in name and not any(s in everything for s in _suffixes(name))

    misses: list[str] = []
    with TOPLIST.open() as f:
        misses.extend(name for line in f if unlisted(name := line.strip().lower()))
    from_toplist = len(misses)
    while len(misses) < UNLISTED:
        name = f"{_word(rng)}{rng.randint(0, 99)}.{_word(rng)}.{rng.choice(tlds)}"
        if rng.random() < 0.3:
            name = f"{rng.choice(['www', 'mail', 'img'])}.{name}"
        if unlisted(name):
            misses.append(name)
    rng.shuffle(misses)
    (workdir / "unlisted.txt").write_text("".join(n + "\n" for n in misses))
    info = {
        "names": len(everything),
        "real_names": real,
        "entries": entries,
        "lists": len(SOURCES),
        "unlisted_from_toplist": from_toplist,
    }
    (workdir / "meta.json").write_text(json.dumps(info))
    return info


# ---------------------------------------------------------------- measuring, in a worker


def _status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon and RssFile of this process, in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _list_files(workdir: Path) -> list[Path]:
    return sorted((workdir / "lists").glob("*.txt"))


def _build(
    workdir: Path, path: Path | None, spill: bool = True
) -> tuple[DomainIndex, IndexBuilder]:
    builder = IndexBuilder(spill_dir=workdir if spill else None)
    for (category, source, allow), file in zip(SOURCES, _list_files(workdir), strict=True):
        list_id = builder.add_list(ListInfo(category, source, allow))
        with file.open() as f:
            builder.add_many(list_id, map(str.rstrip, f))
    return builder.finish(path, fingerprint="bench"), builder


def _read_lines(path: Path, limit: int | None = None) -> list[str]:
    with path.open() as f:
        names = f.read().split()
    return names[:limit] if limit is not None else names


def _time_lookups(index: DomainIndex, names: list[str]) -> float:
    """Median over RUNS runs of the µs per lookup."""
    match = index.match
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for name in names:
            match(name)
        times.append((time.perf_counter() - start) / len(names) * 1e6)
    return statistics.median(times)


def worker_build(workdir: Path) -> dict[str, Any]:
    gc.collect()
    base = _status()["VmRSS"]
    reset = _reset_peak()
    start = time.perf_counter()
    index, builder = _build(workdir, workdir / "lists.idx")
    seconds = time.perf_counter() - start
    status = _status()
    return {
        "seconds": seconds,
        "entries": len(index),
        "nbytes": index.nbytes,
        "file_bytes": (workdir / "lists.idx").stat().st_size,
        "duplicates": sum(builder.duplicates.values()),
        "peak_hwm": status["VmHWM"] - base,
        "peak_maxrss": _max_rss() - base,
        "hwm_reset": reset,
        "after_build": status["VmRSS"] - base,
    }


def worker_rebuild(workdir: Path, spill: bool = True) -> dict[str, Any]:
    """The running proxy's case: the old index serves while the new one is built, then swapped."""
    probes = _read_lines(workdir / "listed.txt")
    gc.collect()
    base = _status()["VmRSS"]
    current = DomainIndex.open(workdir / "lists.idx", "bench")
    assert current is not None
    for name in probes:
        current.match(name)
    steady = _status()["VmRSS"] - base
    _reset_peak()
    start = time.perf_counter()
    new, _ = _build(workdir, workdir / "rebuilt.idx", spill)
    old, current = current, new
    old.close()
    seconds = time.perf_counter() - start
    for name in probes:
        current.match(name)
    status = _status()
    return {
        "seconds": seconds,
        "steady": steady,
        "peak": status["VmHWM"] - base,
        "after": status["VmRSS"] - base,
    }


def worker_build_traced(workdir: Path) -> dict[str, Any]:
    tracemalloc.start()
    index, _ = _build(workdir, workdir / "traced.idx")
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    index.close()
    return {"traced_peak": peak, "traced_after": current}


def worker_build_memory(workdir: Path) -> dict[str, Any]:
    gc.collect()
    base = _status()["VmRSS"]
    _reset_peak()
    start = time.perf_counter()
    index, _ = _build(workdir, None, spill=False)
    seconds = time.perf_counter() - start
    status = _status()
    return {
        "seconds": seconds,
        "peak_hwm": status["VmHWM"] - base,
        "steady": status["VmRSS"] - base,
        "entries": len(index),
    }


def worker_steady(workdir: Path) -> dict[str, Any]:
    probes = _read_lines(workdir / "listed.txt")
    gc.collect()
    base = _status()
    start = time.perf_counter()
    index = DomainIndex.open(workdir / "lists.idx", "bench")
    opened = time.perf_counter() - start
    assert index is not None
    hits = sum(1 for name in probes if index.match(name))
    gc.collect()
    now = _status()
    return {
        "open_seconds": opened,
        "hits": hits,
        "probes": len(probes),
        "steady": now["VmRSS"] - base["VmRSS"],
        "steady_anon": now["RssAnon"] - base["RssAnon"],
        "steady_file": now["RssFile"] - base["RssFile"],
    }


def worker_lookup(workdir: Path) -> dict[str, Any]:
    index = DomainIndex.open(workdir / "lists.idx", "bench")
    assert index is not None
    listed = _read_lines(workdir / "listed.txt")
    unlisted = _read_lines(workdir / "unlisted.txt", LOOKUPS)

    def labels(names: list[str]) -> float:
        return sum(n.count(".") + 1 for n in names) / len(names)

    return {
        "hit_us": _time_lookups(index, listed),
        "miss_us": _time_lookups(index, unlisted),
        "hit_labels": labels(listed),
        "miss_labels": labels(unlisted),
    }


def worker_fp(workdir: Path) -> dict[str, Any]:
    index = DomainIndex.open(workdir / "lists.idx", "bench")
    assert index is not None
    names = false = probes = 0
    examples: list[str] = []
    with (workdir / "unlisted.txt").open() as f:
        for line in f:
            name = line.rstrip()
            names += 1
            probes += name.count(".")
            if found := index.match(name):
                false += 1
                if len(examples) < 5:
                    examples.append(f"{name} -> {found[0].name}")
    return {"names": names, "probes": probes, "false": false, "examples": examples}


def worker_pyset(workdir: Path) -> dict[str, Any]:
    gc.collect()
    base = _status()["VmRSS"]
    names: set[str] = set()
    for file in _list_files(workdir):
        with file.open() as f:
            names.update(map(str.rstrip, f))
    gc.collect()
    return {"set": _status()["VmRSS"] - base, "names": len(names)}


WORKERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "build": worker_build,
    "rebuild": worker_rebuild,
    "rebuild-nospill": lambda workdir: worker_rebuild(workdir, spill=False),
    "build-traced": worker_build_traced,
    "build-memory": worker_build_memory,
    "steady": worker_steady,
    "lookup": worker_lookup,
    "fp": worker_fp,
    "pyset": worker_pyset,
}


# ---------------------------------------------------------------- orchestrating


def _run(kind: str, workdir: Path, *extra: str) -> dict[str, Any]:
    """Run one step in a fresh interpreter and return its JSON result.

    Even preparing runs apart: ru_maxrss survives exec, so a big parent would inflate it.
    """
    done = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--workdir", str(workdir), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _mb(n: float) -> str:
    return f"{n / MB:.1f} MB"


def report(workdir: Path, meta: dict[str, Any]) -> str:
    build = _run("build", workdir)
    traced = _run("build-traced", workdir)
    memory = _run("build-memory", workdir)
    steady = _run("steady", workdir)
    lookup = _run("lookup", workdir)
    fp = _run("fp", workdir)
    rebuild = _run("rebuild", workdir)
    nospill = _run("rebuild-nospill", workdir)
    pyset = _run("pyset", workdir)

    names, entries = meta["names"], build["entries"]
    expected_fp = fp["probes"] * false_positive_rate(names)
    ratio = build["peak_hwm"] / steady["steady"] if steady["steady"] else float("nan")
    rows = [
        ("distinct names (real / synthetic)", f"{names:,} ({meta['real_names']:,} / "
         f"{names - meta['real_names']:,})", ""),
        ("lists / entries (name, list) / repeats dropped",
         f"{meta['lists']} / {entries:,} / {build['duplicates']:,}", ""),
        ("build: stream 15 text files, spill, sort, write, map",
         f"{build['seconds']:.2f} s", "< 5 s"),
        ("entry array (bytes per name / per entry)",
         f"{_mb(build['nbytes'])} ({build['nbytes'] / names:.2f} / 8.00)", ""),
        ("index file", _mb(build["file_bytes"]), ""),
        ("open mapped file (header, meta, crc32 read through the file)",
         f"{steady['open_seconds'] * 1000:.1f} ms", ""),
        ("steady RSS added: open + 100k lookups (anon / file)",
         f"{_mb(steady['steady'])} ({_mb(steady['steady_anon'])} / "
         f"{_mb(steady['steady_file'])}); {steady['steady'] / names:.1f} B/name; "
         f"{steady['hits']:,} of {steady['probes']:,} listed subdomains matched", "<= 40 MB"),
        ("peak RSS added during build (VmHWM)", _mb(build["peak_hwm"]), ""),
        ("peak RSS added during build (ru_maxrss)", _mb(build["peak_maxrss"]), ""),
        ("peak traced Python allocations during build (tracemalloc)",
         _mb(traced["traced_peak"]), ""),
        ("build peak / steady", f"{ratio:.2f}x", "< 2x"),
        ("rebuild next to the serving index (spill): peak / steady",
         f"{_mb(rebuild['peak'])} / {_mb(rebuild['steady'])} = "
         f"{rebuild['peak'] / rebuild['steady']:.2f}x ({rebuild['seconds']:.2f} s; "
         f"{_mb(rebuild['after'])} after the swap)", "< 2x"),
        ("the same rebuild without spill_dir: peak / steady",
         f"{_mb(nospill['peak'])} / {_mb(nospill['steady'])} = "
         f"{nospill['peak'] / nospill['steady']:.2f}x ({nospill['seconds']:.2f} s; "
         f"{_mb(nospill['after'])} after the swap)", ""),
        ("in-memory build (no file, no spill): time / peak / steady",
         f"{memory['seconds']:.2f} s / {_mb(memory['peak_hwm'])} / {_mb(memory['steady'])}", ""),
        ("lookup, listed subdomain (median of 5 x 100k)",
         f"{lookup['hit_us']:.2f} µs ({lookup['hit_labels']:.1f} labels avg)", "few µs"),
        ("lookup, unlisted name (median of 5 x 100k)",
         f"{lookup['miss_us']:.2f} µs ({lookup['miss_labels']:.1f} labels avg)", "few µs"),
        ("false positives in 1M unlisted names",
         f"{fp['false']} of {fp['names']:,} ({fp['probes']:,} probes; expected "
         f"{expected_fp:.4f} = probes x {names:,} / 2^48)", "~0"),
        ("for comparison: Python set of the same names", _mb(pyset["set"]), "> 100 MB"),
    ]  # fmt: skip
    lines = ["| measurement | result | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if fp["examples"]:
        lines.append("")
        lines.append("false positives: " + ", ".join(fp["examples"]))
    if not build["hwm_reset"]:
        lines.append("")
        lines.append("note: VmHWM could not be reset; the peak includes start-up")
    lines.append("")
    lines.append(f"unlisted names from the Umbrella top 100k: {meta['unlisted_from_toplist']:,}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=1_000_000, help="distinct listed names")
    parser.add_argument("--workdir", type=Path, help="keep the generated files here")
    parser.add_argument("--worker", choices=[*WORKERS, "prepare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "prepare":
        print(json.dumps(prepare(args.workdir, args.names)))
        return
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.workdir)))
        return
    with tempfile.TemporaryDirectory(prefix="index-bench-") as tmp:
        workdir: Path = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        meta = _run("prepare", workdir, "--names", str(args.names))
        print(f"prepared {meta['names']:,} names in {time.perf_counter() - start:.1f} s "
              f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})\n")  # fmt: skip
        print(report(workdir, meta))


if __name__ == "__main__":
    main()
