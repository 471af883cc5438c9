"""The report for a terminal: one rich renderable of headings, tables and a heat map.

`render` returns the renderable; the command line prints it on its Console. Texts come from
the language's catalogue (translations); names, categories and messages from the log are
escaped, so nothing a client asked for is read as rich markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from filterdns.querylog.report.data import Report
from filterdns.querylog.translations import texts as catalogue

SHADES = "░▒▓█"
DASH = "\u2013"  # between the ends of the period
RIGHT = frozenset({"count", "lookups", "blocked"})  # numeric columns

Texts = Mapping[str, str]


def render(result: Report, lang: str, footer: str = "") -> RenderableType:
    """The report as rich tables, headings in `lang` (its catalogue; English when unknown)."""
    texts = catalogue(lang)
    return Group(
        *_summary(result, texts),
        *_profiles(result, texts),
        *_top_names(result, texts),
        _heading(texts, "by_hour"),
        *heat_lines(result, texts),
        *_bypass(result, texts),
        *_bedtime(result, texts),
        *_drops(result, texts),
        *_alerts(result, texts),
        *([Text(f"\n{footer}", style="italic")] if footer else []),
    )


def heat_lines(result: Report, texts: Texts) -> list[Text]:
    """The heat map as text: a row of two-character cells per weekday, shaded by count."""
    labels = texts["days"].split()
    width = max(len(label) for label in labels) + 1
    header = " " * width + "".join(f"{hour:<6}" for hour in range(0, 24, 3))
    lines = [Text(header, style="dim")]
    peak = max(max(row) for row in result.heatmap)
    for label, row in zip(labels, result.heatmap, strict=True):
        line = Text(f"{label:<{width}}")
        for count in row:
            if count == 0:
                line.append("··", style="dim")
            else:
                shade = SHADES[min(len(SHADES), math.ceil(count / peak * len(SHADES))) - 1]
                line.append(shade * 2, style="red")
        lines.append(line)
    lines.append(Text(texts["legend"].format(max=peak), style="dim"))
    return lines


def _heading(texts: Texts, key: str) -> Text:
    return Text(f"\n{texts[key]}", style="bold underline")


def _count_table(texts: Texts, *columns: str) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(escape(texts[column]), justify="right" if column in RIGHT else "left")
    return table


def _summary(result: Report, texts: Texts) -> list[RenderableType]:
    everything = texts["all"]
    period = f"{result.local(result.since)} {DASH} {result.local(result.until)}"
    who = result.shown(result.profile) if result.profile else everything
    return [
        Text(texts["title"], style="bold"),
        Text(f"{texts['period']}: {period} ({texts['timezone']} {result.zone.key})"),
        Text(f"{texts['profile']}: {who}; {texts['client']}: {result.client or everything}"),
        Text(f"{texts['total']}: {result.blocked_total}", style="bold"),
    ]


def _profiles(result: Report, texts: Texts) -> list[RenderableType]:
    if not result.profiles:
        return [_heading(texts, "by_profile"), escape(texts["none"])]
    table = _count_table(texts, "profile", "category", "count")
    for name, counts in result.profiles.items():
        for category, count in counts.items():
            table.add_row(escape(result.shown(name)), escape(category), str(count))
    categories = _count_table(texts, "category", "count")
    for category, count in result.categories.items():
        categories.add_row(escape(category), str(count))
    return [_heading(texts, "by_profile"), table, _heading(texts, "categories"), categories]


def _top_names(result: Report, texts: Texts) -> list[RenderableType]:
    if not result.top_names:
        return [_heading(texts, "top_names"), escape(texts["none"])]
    table = _count_table(texts, "name", "category", "count")
    for top in result.top_names:
        table.add_row(escape(top.name), escape(top.category or "-"), str(top.count))
    return [_heading(texts, "top_names"), table]


def _bypass(result: Report, texts: Texts) -> list[RenderableType]:
    if not result.bypass:
        return [_heading(texts, "bypass"), escape(texts["bypass_none"])]
    table = _count_table(texts, "name", "kind", "profile", "count")
    for attempt in result.bypass:
        table.add_row(
            escape(attempt.name),
            escape(texts[f"kind_{attempt.kind}"]),
            escape(result.shown(attempt.profile) if attempt.profile else "-"),
            str(attempt.count),
            style="bold red",
        )
    return [_heading(texts, "bypass"), table]


def _bedtime(result: Report, texts: Texts) -> list[RenderableType]:
    if not result.bedtime:
        return [_heading(texts, "bedtime"), escape(texts["bedtime_none"])]
    table = _count_table(texts, "profile", "lookups", "blocked")
    for name, (lookups, blocked) in result.bedtime.items():
        table.add_row(escape(result.shown(name)), str(lookups), str(blocked))
    return [_heading(texts, "bedtime"), table]


def _drops(result: Report, texts: Texts) -> list[RenderableType]:
    if not result.drops:
        return [_heading(texts, "drops"), escape(texts["drops_none"])]
    message = texts["drops_some"].format(count=result.drops)
    return [_heading(texts, "drops"), f"[yellow]{escape(message)}[/yellow]"]


def _alerts(result: Report, texts: Texts) -> list[RenderableType]:
    if not result.alerts:
        return [_heading(texts, "alerts"), escape(texts["alerts_none"])]
    table = _count_table(texts, "time", "rule", "profile", "category", "count", "message")
    table.add_column(escape(texts["delivered"]))
    everything = texts["all"]
    for alert in result.alerts:
        table.add_row(
            result.local(alert.ts),
            escape(alert.rule),
            escape(result.shown(alert.profile) if alert.profile else everything),
            escape(", ".join(alert.categories)),
            str(alert.count),
            escape(alert.message),
            escape(texts["yes"]) if alert.delivered else f"[red]{escape(texts['no'])}[/red]",
        )
    return [_heading(texts, "alerts"), table]
