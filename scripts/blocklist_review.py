"""The hand-reviewed files beside the shipped lists, and the build script's `--report`.

    blocklists/exceptions.txt    <category> <name>  # reason      (a reviewed false positive)
    blocklists/never-block.txt   <name>  # group                  (no category blocks it)

`--report` builds the index a fresh offline install uses (the project's own index, the same
exceptions rule as the policy) and prints its memory, then the share of the Umbrella top 10,000
and 100,000 names, the Vietnamese popular sites and the world universities that each age band
blocks; `--hits FILE` writes every hit (rank, name, categories) for review.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from filterdns.config import BUILTIN_BANDS
from filterdns.lists.cachedir import shipped_index
from filterdns.lists.domains import InvalidName, normalize_domain
from filterdns.lists.index import DomainIndex
from filterdns.lists.shipped import SHIPPED, shipped_path
from filterdns.policy.steps import excepted
from filterdns.policy.values import Match

_LINE = re.compile(r"([^#]*?)\s*#\s*(.*)")


def _entries(path: Path) -> Iterable[tuple[int, str, str]]:
    """(line number, fields before `#`, comment) of each content line; ValueError without one."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = _LINE.fullmatch(stripped)
        if found is None or not found[2].strip():
            raise ValueError(f"{path}:{number}: needs a `# reason` comment: {line!r}")
        yield number, found[1], found[2].strip()


def _name(path: Path, number: int, text: str) -> str:
    try:
        name = normalize_domain(text)
    except InvalidName as exc:
        raise ValueError(f"{path}:{number}: {text!r} is not a domain name ({exc.reason})") from exc
    if name != text:
        raise ValueError(f"{path}:{number}: write {name!r}, not {text!r}")
    return name


def read_exceptions(path: Path, categories: Sequence[str]) -> dict[str, dict[str, str]]:
    """`<category> <name>  # reason` lines: category -> {name: reason}, in file order."""
    found: dict[str, dict[str, str]] = {}
    if not path.is_file():
        return found
    for number, fields, reason in _entries(path):
        parts = fields.split()
        if len(parts) != 2 or parts[0] not in categories:
            raise ValueError(f"{path}:{number}: expected `<category> <name>  # reason`")
        name = _name(path, number, parts[1])
        if name in found.setdefault(parts[0], {}):
            raise ValueError(f"{path}:{number}: {parts[0]} {name} is listed twice")
        found[parts[0]][name] = reason
    return found


def read_never_block(path: Path) -> dict[str, str]:
    """`<name>  # group` lines: {name: group}."""
    found: dict[str, str] = {}
    if not path.is_file():
        return found
    for number, fields, group in _entries(path):
        parts = fields.split()
        if len(parts) != 1:
            raise ValueError(f"{path}:{number}: expected `<name>  # group`")
        name = _name(path, number, parts[0])
        if name in found:
            raise ValueError(f"{path}:{number}: {name} is listed twice")
        found[name] = group.split()[0]
    return found


def policy_matches(index: DomainIndex, name: str) -> list[Match]:
    """The index's hits for a name as the policy sees them: (listed, category, source, allow)."""
    out: list[Match] = []
    for hit in index.match(name):
        info = index.lists[hit.list_id]
        out.append((hit.name, info.category, info.source, info.allow))
    return out


def blocking(index: DomainIndex, name: str) -> set[str]:
    """The categories whose lists block `name` once exceptions and never-block are applied."""
    matches = policy_matches(index, name)
    return {
        category
        for _n, category, _s, allow in matches
        if not allow and excepted(matches, category) is None
    }


def top_sites(shared: Path) -> dict[str, list[str]]:
    """The review sets: Umbrella top 10k and 100k, Vietnamese sites, world universities."""
    sets: dict[str, list[str]] = {}
    umbrella = shared / "toplists" / "umbrella-top-100k.txt"
    if umbrella.is_file():
        names = umbrella.read_text(encoding="utf-8").split()
        sets["umbrella top 10k"] = names[:10_000]
        sets["umbrella top 100k"] = names[:100_000]
    viet = shared / "toplists" / "commoncrawl-web-languages" / "vietnamese.md"
    if viet.is_file():
        hosts = re.findall(r"https?://([^/\s)]+)", viet.read_text(encoding="utf-8"))
        sets["vietnamese sites"] = list(dict.fromkeys(h.lower() for h in hosts))
    unis = shared / "toplists" / "hipo-university-domains-list"
    unis /= "world_universities_and_domains.json"
    if unis.is_file():
        domains = [d for u in json.loads(unis.read_text()) for d in u.get("domains", [])]
        sets["universities"] = list(dict.fromkeys(d.lower() for d in domains))
    return sets


def report(shared: Path, out: Path, hits: Path | None) -> None:
    """Print shipped sizes, the shipped index's memory and each band's block rate."""
    for category, sources in SHIPPED.items():
        path = shipped_path(sources[0])
        print(f"{category:14} {path.name:18} {path.stat().st_size:>10,} bytes, remote: "
              f"{len(sources) - 1}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        index = shipped_index(Path(tmp))
        memory = index.nbytes
        print(f"shipped index: {len(index):,} entries, {memory:,} bytes "
              f"({memory / 2**20:.1f} MiB; the directory adds at most 256 KiB)")  # fmt: skip
        written = _band_rates(index, top_sites(shared), hits)
        index.close()
    if hits is not None:
        print(f"{written:,} hits written to {hits}")


def _band_rates(index: DomainIndex, sets: dict[str, list[str]], hits: Path | None) -> int:
    lines: list[str] = []
    bands = [(b.name, frozenset(b.categories)) for b in BUILTIN_BANDS]
    print(f"{'blocked share':22}" + "".join(f"{name:>10}" for name, _ in bands))
    for label, names in sets.items():
        found = [(rank, n, blocking(index, n)) for rank, n in enumerate(names, 1)]
        row = []
        for _band, blocked in bands:
            count = sum(1 for _r, _n, cats in found if cats & blocked)
            row.append(f"{100 * count / max(len(names), 1):9.2f}%")
        print(f"{label + f' ({len(names):,})':22}" + "".join(row))
        if label != "umbrella top 100k":
            lines += [f"{label}\t{r}\t{n}\t{','.join(sorted(c))}" for r, n, c in found if c]
    if hits is not None:
        hits.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return len(lines)
