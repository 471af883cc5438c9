"""Time zones: the names a configuration may use, and which zone a profile's clock reads.

Schedules are read in an IANA zone (`Asia/Ho_Chi_Minh`), because a zone carries its
daylight-saving rules. People write other things, and a wrong guess shifts every bedtime:
"Asia/Hanoi" (no such zone; the closest spelling, Asia/Yangon, is UTC+6:30) or "GMT+7" (the
closest spelling, GMT+0, is seven hours off). So:

- a zone name is matched without regard to case, with spaces for underscores;
- well-known names that are not zones, or old ones, are taken for the zone they mean
  (`ALIASES`: Asia/Hanoi and Asia/Saigon are Asia/Ho_Chi_Minh);
- a UTC offset (`GMT+7`, `UTC+07:00`, `+7`) is refused with the place to write instead and the
  `Etc/` name, whose sign is inverted (`Etc/GMT-7` is UTC+7);
- a close misspelling is suggested with its current offset, so a wrong guess shows.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from filterdns.errors import closest

# Names people use that are not IANA zones (or are old links), and the zone they mean.
ALIASES = {
    "asia/hanoi": "Asia/Ho_Chi_Minh",
    "asia/saigon": "Asia/Ho_Chi_Minh",
    "asia/ho_chi_minh_city": "Asia/Ho_Chi_Minh",
    "vietnam": "Asia/Ho_Chi_Minh",
    "hanoi": "Asia/Ho_Chi_Minh",
    "saigon": "Asia/Ho_Chi_Minh",
    "ho_chi_minh": "Asia/Ho_Chi_Minh",
    "ho_chi_minh_city": "Asia/Ho_Chi_Minh",
    "asia/calcutta": "Asia/Kolkata",
    "asia/rangoon": "Asia/Yangon",
    "europe/kiev": "Europe/Kyiv",
}
# One place per whole-hour (and common half-hour) offset, for the hint on a UTC offset.
PLACES = {
    -10.0: "Pacific/Honolulu", -8.0: "America/Los_Angeles", -7.0: "America/Denver",
    -6.0: "America/Chicago", -5.0: "America/New_York", -3.0: "America/Sao_Paulo",
    0.0: "Europe/London", 1.0: "Europe/Berlin", 2.0: "Europe/Athens", 3.0: "Europe/Moscow",
    4.0: "Asia/Dubai", 5.0: "Asia/Karachi", 5.5: "Asia/Kolkata", 6.0: "Asia/Dhaka",
    7.0: "Asia/Ho_Chi_Minh", 8.0: "Asia/Singapore", 9.0: "Asia/Tokyo",
    10.0: "Australia/Sydney", 12.0: "Pacific/Auckland",
}  # fmt: skip
_OFFSET = re.compile(r"(?:utc|gmt|z)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


def is_timezone(key: str) -> bool:
    """True when `key` names an IANA time zone this system knows (Europe/Berlin, UTC)."""
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@functools.cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


@functools.cache
def _by_folded_name() -> dict[str, str]:
    return {name.lower(): name for name in _zone_names()}


def parse_timezone(text: str) -> str:
    """The IANA zone `text` names (see the module docstring); ValueError saying what to write."""
    key = text.strip()
    if is_timezone(key) and key.lower() not in ALIASES:
        return key
    folded = re.sub(r"\s+", "_", key).lower()
    if folded in ALIASES:
        return ALIASES[folded]
    if folded in _by_folded_name():
        return _by_folded_name()[folded]
    offset = _OFFSET.fullmatch(key)
    if offset is not None:
        raise ValueError(_offset_hint(text, offset))
    message = f"{_show(text)} is not an IANA time zone like Europe/Berlin or Asia/Ho_Chi_Minh"
    close = closest(key, _zone_names(), cutoff=0.8)
    if close:
        zone = ALIASES.get(close.lower(), close)
        message += f" (did you mean {_show(zone)}, {_utc_offset(zone)} now?)"
    raise ValueError(message)


def _offset_hint(text: str, offset: re.Match[str]) -> str:
    sign = -1 if offset.group(1) == "-" else 1
    hours = sign * (int(offset.group(2)) + int(offset.group(3) or 0) / 60)
    shown = f"UTC{'+' if hours >= 0 else '-'}{_hours(abs(hours))}"
    message = f"{_show(text)} is a UTC offset, not a time zone; write the place, whose daylight"
    message += " saving rules come with it"
    place = PLACES.get(hours)
    if place is not None:
        message += f", e.g. {place} for {shown}"
    if hours == int(hours) and -12 <= hours <= 14:
        etc = f"Etc/GMT{-int(hours):+d}" if hours else "Etc/GMT"
        message += f"; or {etc} (the Etc/ names count the other way: {etc} is {shown})"
    return message


def _hours(hours: float) -> str:
    whole = int(hours)
    minutes = round((hours - whole) * 60)
    return f"{whole}:{minutes:02d}" if minutes else str(whole)


def _utc_offset(name: str) -> str:
    delta = datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(name)).utcoffset()
    hours = (delta.total_seconds() / 3600) if delta is not None else 0.0
    return f"UTC{'+' if hours >= 0 else '-'}{_hours(abs(hours))}"


def _show(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _zone_key(text: str) -> str:
    """`/usr/share/zoneinfo/Europe/Berlin` -> `Europe/Berlin`; other text unchanged."""
    marker = "zoneinfo/"
    return text.rsplit(marker, 1)[1] if marker in text else text


def system_timezone(environ: Mapping[str, str] | None = None, etc: Path = Path("/etc")) -> str:
    """The system's IANA time zone: $TZ, else /etc/timezone, else the zone /etc/localtime links
    to; "UTC" when none of them names a zone this system knows."""
    env = os.environ if environ is None else environ
    candidates = [_zone_key(env.get("TZ", "").strip().lstrip(":"))]
    with contextlib.suppress(OSError, UnicodeDecodeError):
        candidates.append((etc / "timezone").read_text(encoding="utf-8").partition("\n")[0])
    with contextlib.suppress(OSError):
        candidates.append(_zone_key(os.readlink(etc / "localtime")))
    for candidate in candidates:
        key = candidate.strip()
        if key and not key.startswith("/") and is_timezone(key):
            return key
    return "UTC"


def zone_of(profile_zone: str | None, server_zone: str | None) -> zoneinfo.ZoneInfo:
    """The zone a profile's schedules are read in: its own, else `server.timezone`, else the
    system's."""
    return zoneinfo.ZoneInfo(profile_zone or server_zone or system_timezone())
