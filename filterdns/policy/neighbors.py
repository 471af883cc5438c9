"""MAC addresses of the machines on our links, from the kernel's neighbour table.

Two sources are read and merged: `/proc/net/arp` (IPv4) and the output of `ip -o neigh` (IPv4
and IPv6; `/proc/net/arp` has no IPv6 neighbours). Both parsers are lenient: a malformed row is
skipped and counted, an incomplete entry (no hardware address yet, FAILED, all-zero MAC) is
skipped and counted separately, and nothing in the input can make them raise.

`Neighbours` keeps the merged table in memory and is built for the event loop:

- `mac_of(ip)` never does I/O: it is one dict lookup. On a miss it flags a refresh (at most once
  per `min_interval` seconds for the same address) and wakes the background task, then returns
  None at once; the caller answers with what it knows now (the next query sees the new table).
- `refresh()` reads both sources in a worker thread (`asyncio.to_thread`) and swaps the table in
  whole; `generation` counts the swaps that changed the table.
- `run()` is the background task: it refreshes every `interval` seconds, and sooner when a miss
  was flagged, but never more than once per `min_interval` seconds for misses.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filterdns.dns.addresses import canonical_ip
from filterdns.memo import Memo

__all__ = [
    "NeighbourTable",
    "Neighbours",
    "canonical_ip",
    "normalize_mac",
    "parse_ip_neigh",
    "parse_proc_arp",
]


_HEX = "[0-9a-f]"
_COLON = re.compile(rf"{_HEX}{{1,2}}(?::{_HEX}{{1,2}}){{5}}")
_DASH = re.compile(rf"{_HEX}{{1,2}}(?:-{_HEX}{{1,2}}){{5}}")
_DOTTED = re.compile(rf"{_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}}")
_BARE = re.compile(rf"{_HEX}{{12}}")

_ZERO_MAC = "00:00:00:00:00:00"
# `ip neigh` states of an entry that has no usable hardware address.
_INCOMPLETE_STATES = frozenset({"INCOMPLETE", "FAILED", "NONE"})
# Bounds of the per-address miss memory; cleared whole when exceeded.
_MAX_MISSES = 65536
# `ip -o neigh` must answer quickly; on a slow or missing `ip` we go without IPv6 neighbours.
_IP_NEIGH_TIMEOUT = 2.0


def normalize_mac(text: str) -> str:
    """A MAC address in lower case with colons: "AA-BB-CC-DD-EE-FF" -> "aa:bb:cc:dd:ee:ff".

    Accepts colon or dash separated bytes (one or two hex digits each), Cisco dotted form
    "aabb.ccdd.eeff" and twelve bare hex digits; raises ValueError for anything else.
    """
    s = text.strip().lower()
    if _COLON.fullmatch(s) or _DASH.fullmatch(s):
        octets = re.split("[:-]", s)
        return ":".join(o.zfill(2) for o in octets)
    if _DOTTED.fullmatch(s) or _BARE.fullmatch(s):
        digits = s.replace(".", "")
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    raise ValueError(f"{text!r} is not a MAC address (expected e.g. aa:bb:cc:dd:ee:ff)")


@dataclass(frozen=True, slots=True)
class NeighbourTable:
    """Parsed neighbour entries: `macs` maps canonical IP text to MAC.

    `skipped` counts malformed rows, `incomplete` counts well-formed entries without a usable
    hardware address (still resolving, FAILED, all-zero MAC).
    """

    macs: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    incomplete: int = 0


def parse_proc_arp(text: str) -> NeighbourTable:
    """Parse `/proc/net/arp`: "IP HWtype Flags HWaddress Mask Device" after a header line."""
    macs: dict[str, str] = {}
    skipped = incomplete = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[:2] == ["IP", "address"]:
            continue
        if len(fields) != 6:
            skipped += 1
            continue
        ip_text, _hwtype, flags_text, mac_text, _mask, _device = fields
        try:
            address = canonical_ip(ip_text)
            flags = int(flags_text, 16)
            mac = normalize_mac(mac_text)
        except ValueError:
            skipped += 1
            continue
        if flags == 0 or mac == _ZERO_MAC:
            incomplete += 1
            continue
        macs[str(address)] = mac
    return NeighbourTable(macs, skipped, incomplete)


def parse_ip_neigh(text: str) -> NeighbourTable:
    """Parse `ip neigh` / `ip -o neigh` output.

    "192.168.1.5 dev wlan0 lladdr aa:bb:cc:dd:ee:ff STALE",
    "fe80::1 dev eth0 lladdr aa:bb:cc:dd:ee:01 router REACHABLE",
    "10.0.0.9 dev eth0 FAILED" (incomplete: counted, not kept).
    """
    macs: dict[str, str] = {}
    skipped = incomplete = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            address = canonical_ip(fields[0])
        except ValueError:
            skipped += 1
            continue
        state = fields[-1].upper()
        if "lladdr" not in fields:
            if state in _INCOMPLETE_STATES:
                incomplete += 1
            else:
                skipped += 1
            continue
        at = fields.index("lladdr") + 1
        if at >= len(fields):
            skipped += 1
            continue
        try:
            mac = normalize_mac(fields[at])
        except ValueError:
            skipped += 1
            continue
        if state in _INCOMPLETE_STATES or mac == _ZERO_MAC:
            incomplete += 1
            continue
        macs[str(address)] = mac
    return NeighbourTable(macs, skipped, incomplete)


def _run_ip_neigh() -> str:
    """The output of `ip -o neigh show`, or "" when it cannot be had (no `ip`, error, timeout)."""
    try:
        done = subprocess.run(
            ["ip", "-o", "neigh", "show"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_IP_NEIGH_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


class Neighbours:
    """The kernel's neighbour table, kept in memory and refreshed off the event loop.

    Every method is meant for the event loop's thread; only the reads run in a worker thread.
    """

    def __init__(
        self,
        arp_path: Path = Path("/proc/net/arp"),
        ip_neigh: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 1.0,
    ) -> None:
        self._arp_path = arp_path
        self._ip_neigh = ip_neigh if ip_neigh is not None else _run_ip_neigh
        self._clock = clock
        self._min_interval = min_interval
        self._macs: dict[str, str] = {}
        self._addresses: dict[str, tuple[str, ...]] = {}  # MAC -> its addresses, sorted
        self._misses: Memo[str, float] = Memo(_MAX_MISSES)
        self._last_read: float | None = None
        self._wanted = False
        self._wake = asyncio.Event()
        self.generation = 0
        self.reads = 0
        self.skipped = 0
        self.incomplete = 0

    @property
    def table(self) -> dict[str, str]:
        """A copy of the current table: canonical IP text -> MAC."""
        return dict(self._macs)

    @property
    def refresh_wanted(self) -> bool:
        """True when a miss has flagged a refresh that has not started yet."""
        return self._wanted

    def mac_of(self, ip: str) -> str | None:
        """The MAC of `ip` from the current table, or None; never blocks.

        On a miss a refresh is flagged for the background task, at most once per `min_interval`
        seconds for the same address; the answer to this call stays None.
        """
        mac = self._macs.get(ip)
        if mac is not None:
            return mac
        try:
            key = str(canonical_ip(ip))
        except ValueError:
            return None
        mac = self._macs.get(key)
        if mac is not None:
            return mac
        now = self._clock()
        last = self._misses.get(key)
        if last is None or now - last >= self._min_interval:
            self._misses.remember(key, now)
            self._wanted = True
            self._wake.set()
        return None

    def addresses_of(self, mac: str) -> tuple[str, ...]:
        """Every address the current table gives the device `mac` (IPv4 and IPv6), sorted."""
        return self._addresses.get(mac, ())

    def read(self) -> NeighbourTable:
        """Read and merge both sources now (blocking; `refresh` runs it in a thread)."""
        try:
            arp_text = self._arp_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            arp_text = ""
        try:
            neigh_text = self._ip_neigh()
        except Exception:  # a broken source must not stop the other one
            neigh_text = ""
        arp = parse_proc_arp(arp_text)
        neigh = parse_ip_neigh(neigh_text)
        return NeighbourTable(
            arp.macs | neigh.macs,
            arp.skipped + neigh.skipped,
            arp.incomplete + neigh.incomplete,
        )

    async def refresh(self) -> None:
        """Re-read both sources in a worker thread and swap the table in whole."""
        self._wanted = False
        self._last_read = self._clock()
        self.reads += 1
        self.use(await asyncio.to_thread(self.read))

    def use(self, table: NeighbourTable) -> None:
        """Swap `table` in (what `refresh` read; `explain` reads once, synchronously)."""
        if table.macs != self._macs:
            by_mac: dict[str, list[str]] = {}
            for address, mac in table.macs.items():
                by_mac.setdefault(mac, []).append(address)
            self._macs = table.macs
            self._addresses = {mac: tuple(sorted(ips)) for mac, ips in by_mac.items()}
            self.generation += 1
        self.skipped = table.skipped
        self.incomplete = table.incomplete

    def refresh_delay(self) -> float | None:
        """Seconds until a flagged refresh may run (0.0: now), or None when none is flagged."""
        if not self._wanted:
            return None
        if self._last_read is None:
            return 0.0
        return max(0.0, self._last_read + self._min_interval - self._clock())

    async def refresh_if_wanted(self) -> bool:
        """Run a refresh flagged by a miss if `min_interval` has passed since the last read."""
        if self.refresh_delay() != 0.0:
            return False
        await self.refresh()
        return True

    async def run(self, interval: float = 30.0) -> None:
        """Refresh every `interval` seconds, and after a miss once `min_interval` allows."""
        await self.refresh()
        while True:
            self._wake.clear()
            if not self._wanted:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
                except TimeoutError:
                    await self.refresh()
                    continue
            delay = self.refresh_delay()
            if delay is None:  # a manual refresh already served the miss
                continue
            if delay > 0:
                await asyncio.sleep(delay)
            if self._wanted:
                await self.refresh()
