"""The child page's bar charts: bars in proportion, none a sliver, every hour in its place."""

from __future__ import annotations

import pytest

from filterdns.web.charts import (
    MIN_BAR,
    MIN_COLUMN,
    PLOT,
    WIDTH,
    by_hour,
    categories_chart,
    hours_chart,
)


def test_category_bars_are_in_proportion_with_the_busiest_filling_the_width() -> None:
    names = {"adult": "Adult", "gambling": "Gambling"}
    chart = categories_chart({"adult": 40, "gambling": 10, "games": 0}, names.__getitem__)
    assert [b.width for b in chart.bars] == [WIDTH, WIDTH / 4]  # no bar for a count of 0
    assert [b.title for b in chart.bars] == ["Adult: 40", "Gambling: 10"]
    assert chart.total == 50 and not chart.empty
    # each bar sits under its own name, the count at the right end
    labels = [(x.text, x.anchor) for x in chart.texts]
    assert labels == [("Adult", "start"), ("40", "end"), ("Gambling", "start"), ("10", "end")]
    assert chart.bars[0].y + chart.bars[0].height <= chart.texts[2].y - 10
    assert chart.height >= chart.bars[-1].y + chart.bars[-1].height


def test_a_small_count_keeps_a_visible_bar() -> None:
    chart = categories_chart({"adult": 100_000, "dating": 1})
    assert chart.bars[1].width == MIN_BAR


def test_many_categories_end_with_one_bar_for_the_rest() -> None:
    counts = {f"c{i}": 20 - i for i in range(15)}
    chart = categories_chart(counts, limit=5)
    assert [b.title for b in chart.bars] == ["c0: 20", "c1: 19", "c2: 18", "c3: 17", "…: 121"]
    assert chart.total == sum(counts.values())


def test_no_blocks_is_an_empty_chart() -> None:
    chart = categories_chart({})
    assert chart.empty and chart.bars == () and chart.height > 0


def test_hours_add_up_every_day_of_the_heatmap() -> None:
    heatmap = [[0] * 24 for _ in range(7)]
    heatmap[0][21] = 3
    heatmap[4][21] = 2
    heatmap[6][7] = 1
    assert by_hour(heatmap) == [0] * 7 + [1] + [0] * 13 + [5, 0, 0]


def test_hour_columns_stand_in_their_hour_in_proportion() -> None:
    hours = [0] * 24
    hours[7], hours[21], hours[23] = 1, 200, 50
    chart = hours_chart(hours)
    assert [b.value for b in chart.bars] == [1, 200, 50]
    assert [b.title for b in chart.bars] == [
        "07:00-08:00: 1",
        "21:00-22:00: 200",
        "23:00-00:00: 50",
    ]
    tall = {b.value: b.height for b in chart.bars}
    assert tall == {1: MIN_COLUMN, 200: PLOT, 50: PLOT / 4}
    # the columns stand on one baseline, each inside its hour's slot of the width
    assert {b.y + b.height for b in chart.bars} == {PLOT}
    for bar in chart.bars:
        hour = int(bar.title[:2])
        assert chart.width / 24 * hour <= bar.x < bar.x + bar.width <= chart.width / 24 * (hour + 1)
    assert [x.text for x in chart.texts] == ["0h", "6h", "12h", "18h", "24h"]


def test_an_hours_chart_needs_24_hours() -> None:
    with pytest.raises(ValueError, match="24 counts"):
        hours_chart([1, 2, 3])
