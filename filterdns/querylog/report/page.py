"""The report as one self-contained HTML page, returned as a string.

For a parent or head teacher: inline CSS, CSS bar charts, no scripts, fonts or network, print
rules. Texts come from the language's catalogue (translations); everything is escaped.
`render` returns the page; the command line writes it where `--html` says.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from filterdns.querylog.report.data import Report
from filterdns.querylog.translations import texts as catalogue

DASH = "\u2013"  # between the ends of the period

Texts = Mapping[str, str]
Bars = list[tuple[Sequence[str], int]]  # the cells of a row and the count its bar shows

CSS = """
:root { --ink: #1d2433; --muted: #5b6577; --line: #d9dee7; --bar: #3b6fb6; --red: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; padding-bottom: .2rem;
  border-bottom: 2px solid var(--line); }
.meta { color: var(--muted); margin: .15rem 0; }
.total { font-size: 1.25rem; margin: 1rem 0; }
.total strong { font-size: 2rem; margin-right: .4rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.barcell { width: 40%; }
.bar { height: .8rem; background: var(--bar); border-radius: 2px; min-width: 2px; }
.heat { table-layout: fixed; }
.heat td, .heat th { padding: 0; height: 1.4rem; text-align: center; font-size: .7rem;
  border: 1px solid #fff; }
.heat th.day { width: 3rem; text-align: left; padding-left: .25rem; }
.legend { color: var(--muted); font-size: .85rem; }
.warning { color: var(--red); font-weight: 600; }
section.bypass h2 { color: var(--red); border-color: var(--red); }
section.bypass td { color: var(--red); }
footer { margin-top: 2rem; padding-top: .75rem; border-top: 1px solid var(--line);
  color: var(--muted); }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print {
  @page { margin: 1.5cm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  section { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr { break-inside: avoid; page-break-inside: avoid; }
}
"""


def render(result: Report, lang: str, footer: str = "") -> str:
    """One self-contained HTML page of the report (no scripts, fonts or network)."""
    texts = catalogue(lang)
    parts = [*_head(result, lang, texts)]
    for section in (_profiles, _categories, _top_names, _heat, _bypass, _bedtime, _drops, _alerts):
        parts += section(result, texts)
    if footer:
        parts.append(f"<footer>{_e(footer)}</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _head(result: Report, lang: str, texts: Texts) -> list[str]:
    everything = texts["all"]
    who = result.shown(result.profile) if result.profile else everything
    return [
        "<!DOCTYPE html>",
        f'<html lang="{_e(lang)}">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(texts['title'])}</title>",
        f"<style>{CSS}</style></head>",
        "<body><main>",
        f"<h1>{_e(texts['title'])}</h1>",
        f'<p class="meta">{_e(texts["period"])}: {_e(result.local(result.since))} {DASH} '
        f"{_e(result.local(result.until))} ({_e(texts['timezone'])} {_e(result.zone.key)})</p>",
        f'<p class="meta">{_e(texts["profile"])}: {_e(who)}; '
        f"{_e(texts['client'])}: {_e(result.client or everything)}</p>",
        f'<p class="total"><strong>{result.blocked_total}</strong>{_e(texts["total"])}</p>',
    ]


def _section(title: str, body: str, css_class: str = "") -> list[str]:
    opening = f'<section class="{css_class}">' if css_class else "<section>"
    return [f"{opening}<h2>{_e(title)}</h2>", body, "</section>"]


def _paragraph(text: str, css_class: str = "") -> str:
    return f'<p class="{css_class}">{_e(text)}</p>' if css_class else f"<p>{_e(text)}</p>"


def _bar_rows(rows: Bars, peak: int) -> list[str]:
    out = []
    for cells, count in rows:
        width = 100.0 * count / peak if peak else 0.0
        texts = "".join(f"<td>{_e(cell)}</td>" for cell in cells)
        out.append(
            f'<tr>{texts}<td class="n">{count}</td><td class="barcell">'
            f'<div class="bar" style="width:{width:.1f}%"></div></td></tr>'
        )
    return out


def _table(headers: Sequence[str], rows: list[str], numeric: Sequence[int] = ()) -> str:
    head = "".join(
        f'<th class="n">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _profiles(result: Report, texts: Texts) -> list[str]:
    if not result.profiles:
        return _section(texts["by_profile"], _paragraph(texts["none"]))
    bars: Bars = [
        ((result.shown(name), category), count)
        for name, counts in result.profiles.items()
        for category, count in counts.items()
    ]
    peak = max(count for _, count in bars)
    headers = [texts["profile"], texts["category"], texts["count"], ""]
    return _section(texts["by_profile"], _table(headers, _bar_rows(bars, peak), numeric=(2,)))


def _categories(result: Report, texts: Texts) -> list[str]:
    if not result.categories:
        return []
    bars: Bars = [((category,), count) for category, count in result.categories.items()]
    peak = max(result.categories.values())
    headers = [texts["category"], texts["count"], ""]
    return _section(texts["categories"], _table(headers, _bar_rows(bars, peak), numeric=(1,)))


def _top_names(result: Report, texts: Texts) -> list[str]:
    if not result.top_names:
        return _section(texts["top_names"], _paragraph(texts["none"]))
    bars: Bars = [((t.name, t.category or "-"), t.count) for t in result.top_names]
    peak = result.top_names[0].count
    headers = [texts["name"], texts["category"], texts["count"], ""]
    return _section(texts["top_names"], _table(headers, _bar_rows(bars, peak), numeric=(2,)))


def _heat(result: Report, texts: Texts) -> list[str]:
    peak = max(max(row) for row in result.heatmap)
    hours = "".join(f"<th>{hour}</th>" for hour in range(24))
    rows = [f'<tr><th class="day">{_e(texts["hour"])}</th>{hours}</tr>']
    for label, row in zip(texts["days"].split(), result.heatmap, strict=True):
        cells = []
        for count in row:
            alpha = 0.08 + 0.92 * count / peak if count else 0.0
            style = f"background:rgba(180,35,24,{alpha:.2f})" if count else "background:#f3f4f6"
            cells.append(f'<td style="{style}" title="{count}">{count or ""}</td>')
        rows.append(f'<tr><th class="day">{_e(label)}</th>{"".join(cells)}</tr>')
    legend = _paragraph(texts["legend"].format(max=peak), "legend")
    return _section(
        texts["by_hour"], f'<table class="heat"><tbody>{"".join(rows)}</tbody></table>{legend}'
    )


def _bypass(result: Report, texts: Texts) -> list[str]:
    if not result.bypass:
        return _section(texts["bypass"], _paragraph(texts["bypass_none"]), "bypass")
    lines = [
        f"<tr><td>{_e(b.name)}</td><td>{_e(texts['kind_' + b.kind])}</td>"
        f"<td>{_e(result.shown(b.profile) if b.profile else '-')}</td>"
        f'<td class="n">{b.count}</td></tr>'
        for b in result.bypass
    ]
    headers = [texts["name"], texts["kind"], texts["profile"], texts["count"]]
    return _section(texts["bypass"], _table(headers, lines, numeric=(3,)), "bypass")


def _bedtime(result: Report, texts: Texts) -> list[str]:
    if not result.bedtime:
        return _section(texts["bedtime"], _paragraph(texts["bedtime_none"]))
    lines = [
        f"<tr><td>{_e(result.shown(name))}</td>"
        f'<td class="n">{lookups}</td><td class="n">{blocked}</td></tr>'
        for name, (lookups, blocked) in result.bedtime.items()
    ]
    headers = [texts["profile"], texts["lookups"], texts["blocked"]]
    return _section(texts["bedtime"], _table(headers, lines, numeric=(1, 2)))


def _drops(result: Report, texts: Texts) -> list[str]:
    if not result.drops:
        return _section(texts["drops"], _paragraph(texts["drops_none"]))
    message = texts["drops_some"].format(count=result.drops)
    return _section(texts["drops"], _paragraph(message, "warning"))


def _alerts(result: Report, texts: Texts) -> list[str]:
    if not result.alerts:
        return _section(texts["alerts"], _paragraph(texts["alerts_none"]))
    everything = texts["all"]
    lines = [
        f"<tr><td>{_e(result.local(a.ts))}</td><td>{_e(a.rule)}</td>"
        f"<td>{_e(result.shown(a.profile) if a.profile else everything)}</td>"
        f"<td>{_e(', '.join(a.categories))}</td>"
        f'<td class="n">{a.count}</td><td>{_e(a.message)}</td>'
        f"<td>{_e(texts['yes'] if a.delivered else texts['no'])}</td></tr>"
        for a in result.alerts
    ]
    keys = ("time", "rule", "profile", "category", "count", "message", "delivered")
    return _section(texts["alerts"], _table([texts[k] for k in keys], lines, numeric=(4,)))
