"""Bar charts drawn on the server as SVG geometry, for the child page (no script, no styles).

A chart is plain numbers and texts: the template (`templates/_charts.html`) writes them as
`<rect>` and `<text>` elements with a `<title>` per bar, every text escaped there. The charts
stay readable on a 360 px phone however many bars they hold:

- `categories_chart`: one horizontal bar per category under its name, the count at the right;
  the longest bar fills the width and any count above 0 keeps at least MIN_BAR units.
- `hours_chart`: 24 narrow columns (hour 0 to 23) in a viewBox scaled to the page's width;
  any hour with a count is at least MIN_COLUMN units tall, the axis names every sixth hour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

WIDTH = 320.0  # the categories chart's viewBox width
ROW = 38.0  # one category: its name, then its bar
BAR_HEIGHT = 12.0
MIN_BAR = 4.0  # a count above 0 never shrinks to a sliver
HOUR = 10.0  # one hour's column in the hours chart (24 of them: 240 wide)
COLUMN = 8.0
PLOT = 80.0  # the hours chart's tallest column
MIN_COLUMN = 2.0
AXIS = 16.0  # room under the columns for the hours' labels
LABEL_SIZE = 13.0
AXIS_SIZE = 9.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar (a category or an hour): where it is drawn and what its tooltip says."""

    x: float
    y: float
    width: float
    height: float
    value: int
    title: str  # "adult: 12", shown when the bar is touched or hovered


@dataclass(frozen=True, slots=True)
class Text:
    """A label drawn in the chart."""

    x: float
    y: float
    text: str
    anchor: str = "start"  # SVG text-anchor: start, middle or end
    size: float = LABEL_SIZE


@dataclass(frozen=True, slots=True)
class Chart:
    """The chart's viewBox, its bars and its labels; `total` is the sum of the counts."""

    width: float
    height: float
    bars: tuple[Bar, ...]
    texts: tuple[Text, ...]
    total: int

    @property
    def empty(self) -> bool:
        return self.total == 0


def categories_chart(
    counts: Mapping[str, int], name: Callable[[str], str] = str, limit: int = 12
) -> Chart:
    """Horizontal bars, in the order given (the report's: busiest first), at most `limit`; the
    last bar sums the rest when there are more. `name` gives the text shown for a category."""
    rows = [(name(key), count) for key, count in counts.items() if count > 0]
    if len(rows) > limit:
        rest = sum(count for _label, count in rows[limit - 1 :])
        rows = [*rows[: limit - 1], ("…", rest)]
    biggest = max((count for _label, count in rows), default=0)
    bars: list[Bar] = []
    texts: list[Text] = []
    for i, (label, count) in enumerate(rows):
        top = i * ROW
        width = max(MIN_BAR, round(WIDTH * count / biggest, 1))
        bars.append(Bar(0.0, top + 18.0, width, BAR_HEIGHT, count, f"{label}: {count}"))
        texts.append(Text(0.0, top + 13.0, label))
        texts.append(Text(WIDTH, top + 13.0, str(count), anchor="end"))
    total = sum(count for _label, count in rows)
    return Chart(WIDTH, max(ROW, len(rows) * ROW), tuple(bars), tuple(texts), total)


def by_hour(heatmap: Sequence[Sequence[int]]) -> list[int]:
    """The counts per hour of day (0-23) of a weekday-by-hour heatmap, every day added up."""
    hours = [0] * 24
    for day in heatmap:
        for hour, count in enumerate(day):
            hours[hour] += count
    return hours


def hours_chart(hours: Sequence[int]) -> Chart:
    """24 columns, hour 0 on the left; a column's title says "14:00-15:00: 3"."""
    if len(hours) != 24:
        raise ValueError(f"an hours chart needs 24 counts, not {len(hours)}")
    biggest = max(hours)
    bars = []
    for hour, count in enumerate(hours):
        if count <= 0:
            continue
        height = max(MIN_COLUMN, round(PLOT * count / biggest, 1))
        title = f"{hour:02d}:00-{(hour + 1) % 24:02d}:00: {count}"
        bars.append(Bar(hour * HOUR + 1.0, PLOT - height, COLUMN, height, count, title))
    texts = [
        Text(hour * HOUR + HOUR / 2, PLOT + AXIS - 3.0, f"{hour}h", "middle", AXIS_SIZE)
        for hour in (0, 6, 12, 18)
    ]
    texts.append(Text(24 * HOUR, PLOT + AXIS - 3.0, "24h", "end", AXIS_SIZE))
    return Chart(24 * HOUR, PLOT + AXIS, tuple(bars), tuple(texts), sum(hours))
