"""Durations written as "500ms", "10s", "5m", "24h", "90d" or a bare number of seconds.

The configuration takes a bare number as seconds (`timeout: 2`); a command line does not
(`parse_span`): `--for 30` meant 30 minutes to everyone who typed it, and a grant of 30 seconds
that "silently does nothing" is worse than a question.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds in `value`; raise ValueError with a readable message when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration like 10s, 5m, 24h or 90d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative; a duration must be 0 or more")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration like 10s, 5m, 24h or 90d")


class MissingUnitError(ValueError):
    """A bare number where a duration with a unit is wanted."""


def parse_span(text: str) -> float:
    """Seconds in a duration that names its unit ("45m", "2h", "1d"); ValueError otherwise.

    A bare number raises MissingUnitError.
    """
    match = _DURATION.match(text)
    if match is not None and match.group(2) is None:
        raise MissingUnitError(f"{text.strip()!r} has no unit")
    return parse_duration(text)


def format_duration(seconds: float) -> str:
    """A short human form: 90 -> "1m30s", 0.5 -> "500ms"."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    total = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
