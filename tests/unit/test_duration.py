"""Durations: the configuration's (a bare number is seconds) and the command line's (a unit)."""

from __future__ import annotations

import pytest

from filterdns.config.duration import MissingUnitError, parse_duration, parse_span


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45m", 2700.0), ("2h", 7200.0), ("1d", 86400.0), ("30s", 30.0), ("1.5h", 5400.0),
     (" 45 m ", 2700.0), ("1w", 604800.0), ("500ms", 0.5)],
)  # fmt: skip
def test_a_span_with_a_unit(text: str, seconds: float) -> None:
    assert parse_span(text) == seconds


@pytest.mark.parametrize("text", ["30", "1.5", " 45 ", "0"])
def test_a_bare_number_is_no_span(text: str) -> None:
    with pytest.raises(MissingUnitError, match="has no unit"):
        parse_span(text)
    assert parse_duration(text) == float(text)  # the configuration still takes it as seconds


@pytest.mark.parametrize("text", ["", "m", "30x", "-5m", "thirty minutes"])
def test_what_is_no_duration_at_all(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as raised:
        parse_span(text)
    assert not isinstance(raised.value, MissingUnitError)
