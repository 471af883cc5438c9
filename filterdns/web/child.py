"""The page of one child or class (`/p/{profile}`): its state now, what was blocked today or this
week (the report's numbers, as charts), this period's rule, the grants in force, the last changes,
and the one-tap changes a parent or a teacher makes.

What the page reads (the state, the report, the changes) is gathered in a worker thread by
`gather`; the texts are chosen on the loop. Each change is a posted form
(`/p/{profile}/{change}`, CHANGES) made through the shared actions (`filterdns.actions`), the
functions the command line calls, then a 303 back to the page with `?done=` naming what it did;
bad input shows the page again with the problem, status 400.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

from filterdns import actions
from filterdns.actions import ActionError, ProfileStatus
from filterdns.actions.common import zone as profile_zone
from filterdns.config import Config, is_domain_name
from filterdns.config.schedules import ALWAYS_BLOCKED
from filterdns.dns.names import normalize_name
from filterdns.errors import FilterDnsError
from filterdns.policy.budgets import next_midnight
from filterdns.policy.decisions import Policy
from filterdns.policy.schedule import next_change_of
from filterdns.policy.values import UNTIL_RESUMED, Grant, GrantKind
from filterdns.querylog.changes import Change, recent
from filterdns.querylog.report.collect import read_report, report_zone
from filterdns.querylog.report.data import NONE_KEY, Report
from filterdns.web import charts
from filterdns.web.auth import account_of, form, profile_of
from filterdns.web.keys import BACKEND, VIA
from filterdns.web.render import render, texts
from filterdns.web.sites import SiteAlert, Sites, alerts, chosen, sites

routes = web.RouteTableDef()
REPORT_SECONDS = 10.0  # a page's report is shared this long (see _report)
MAX_REPORTS = 256
_reports: dict[tuple[str, int, str, str, str | None], tuple[float, Report]] = {}
_reports_lock = threading.Lock()
SPANS = {"today": 1, "week": 7}  # the report's period: today, or the last 7 days with today
PERIOD_FALLBACK = 45 * 60.0  # "this period" when no rule is active: 45 minutes
CHANGES_SHOWN = 15
# Never allowed with one tap: harmful content, the filter's own protection, what every band
# blocks (the command line can still grant them: `filterdns grant --category`).
NOT_QUICK = frozenset({"adult", "adult-suspect", "gambling", "gambling-suspect", "dating",
                       "drugs", "violence", "bypass", *ALWAYS_BLOCKED})  # fmt: skip
# ?done= keys: what the page confirms after a change (its text: child_done_<key>)
DONE = ("paused", "resumed", "more", "allowed", "period_allow", "period_block", "revoked")


@dataclass(frozen=True, slots=True)
class ThisPeriod:
    """The schedule rule in force now and when the overrides "for this period" end."""

    rules: tuple[str, ...]  # the active rules' names, the profile's own first
    ends: float  # the next schedule change, or PERIOD_FALLBACK from now without an active rule
    scheduled: bool  # whether `ends` is a schedule change (else the fallback)


@dataclass
class Gathered:
    """What the child page shows of one profile, read in a worker thread."""

    status: ProfileStatus
    period: ThisPeriod
    report: Report
    changes: list[Change]
    blocked: list[str]  # the categories blocked now that "+30 min" may allow
    zone: ZoneInfo  # the profile's
    sites: Sites  # the instances the report's rows come from (a PostgreSQL log)
    alerts: list[SiteAlert]  # the report's alerts, with their instance on a PostgreSQL log


def this_period(policy: Policy, name: str, now: float) -> ThisPeriod:
    """The rules active now and when "for this period" ends: at the next change of the
    profile's schedule (grants do not count), else PERIOD_FALLBACK from now."""
    state = policy.state_of(name, now)
    profile = policy.profiles[name]
    rules = tuple(rule.name for rule in state.active)
    if rules:
        at = datetime.fromtimestamp(now, ZoneInfo("UTC"))
        change = next_change_of((rule.window for rule in profile.rules), at, profile.tz)
        if change is not None:
            return ThisPeriod(rules, change.timestamp(), True)
    return ThisPeriod(rules, now + PERIOD_FALLBACK, False)


def midnight(now: float, zone: ZoneInfo) -> float:
    """The start of today in `zone`."""
    at = datetime.fromtimestamp(now, zone)
    return datetime(at.year, at.month, at.day, tzinfo=zone).timestamp()


def gather(
    config: Config, name: str, span: str, now: float, instance: str | None = None
) -> Gathered:
    """Everything the page of profile `name` shows, of every instance's rows or `instance`'s
    (blocking database reads: a worker thread). FilterDnsError when the database cannot be
    read."""
    policy = actions.policy_for(config, now=now)
    status = next(s for s in actions.status(config, policy, now=now) if s.profile == name)
    zone = report_zone(config)
    start = midnight(now, zone)
    since = (datetime.fromtimestamp(start, zone) - timedelta(days=SPANS[span] - 1)).timestamp()
    report = _report(config, name, span, since, now, instance=instance)
    found = sites(config, since, now + 1, instance)
    listed = [SiteAlert(a.ts, a.message, None) for a in report.alerts]
    blocked = sorted(c for c in policy.state_of(name, now).blocked if c in quick(config))
    return Gathered(
        status=status,
        period=this_period(policy, name, now),
        report=report,
        changes=recent(config.log, limit=CHANGES_SHOWN, profiles=[name]),
        blocked=blocked,
        zone=profile_zone(config, name),
        sites=found,
        alerts=alerts(config, since, now + 1, name, instance) if found.shared else listed,
    )


def _report(
    config: Config, name: str, span: str, since: float, now: float, *, instance: str | None
) -> Report:
    """The profile's report for the span, shared for REPORT_SECONDS: reading a week of rows is
    Python work that competes with the DNS path for the interpreter, and a page polled by a
    wall display or a refreshing phone needs no fresher figures (the state, the grants and the
    changes on the page are always read fresh)."""
    key = (str(config.log.database), id(config), name, span, instance)
    made = time.monotonic()
    with _reports_lock:
        found = _reports.get(key)
        if found is not None and made - found[0] < REPORT_SECONDS:
            return found[1]
    try:
        report = read_report(config.log.database, since=since, until=now + 1, profile=name,
                             client=None, config=config, instance=instance)  # fmt: skip
    except FileNotFoundError:
        report = Report(since, now + 1, report_zone(config), name, None)
    with _reports_lock:
        if len(_reports) >= MAX_REPORTS:
            _reports.clear()
        _reports[key] = (made, report)
    return report


def quick(config: Config) -> set[str]:
    """The categories "+30 min" may allow with one tap: time spent (games, social media,
    video...), never harmful content or the filter's own protection (NOT_QUICK)."""
    return set(actions.categories(config)) - NOT_QUICK


def clock(ts: float | None, zone: ZoneInfo, now: float, t: Mapping[str, str]) -> str:
    """ "17:30" today, "01/12 06:00" another day, the words for "until resumed", or ""."""
    if ts is None or not math.isfinite(ts):
        return ""
    if ts >= UNTIL_RESUMED:
        return t["child_until_resumed"]
    at = datetime.fromtimestamp(ts, zone)
    if at.date() == datetime.fromtimestamp(now, zone).date():
        return f"{at:%H:%M}"
    return f"{at:%d/%m %H:%M}"


def category_name(t: Mapping[str, str], category: str | None) -> str:
    """A category as the page names it ("Người lớn"), else its key."""
    if category is None or category == NONE_KEY:
        return t["child_cat_none"]
    return t.get(f"child_cat_{category}", category)


def why(status: ProfileStatus, t: Mapping[str, str]) -> str:
    """Why the profile is in its state, in the page's language ("" when allowed)."""
    if status.state == "paused":
        stops = [g for g in status.grants if g.kind in (GrantKind.PAUSE, GrantKind.BLOCK_ALL)]
        last = max(stops, key=lambda g: g.expires_at, default=None)
        if last is not None and last.created_by:
            return t["child_why_paused"].format(who=last.created_by)
        return ""
    spent = [b.budget for b in status.budgets if b.applies and b.left == 0]
    if status.state == "restricted" and spent and (status.label or "").startswith("budget "):
        return t["child_why_budget"].format(budgets=", ".join(spent))
    if status.label and status.state != "bedtime":  # the badge says bedtime already
        return t["child_why_rule"].format(rule=status.label)
    return ""


def grant_text(grant: Grant, t: Mapping[str, str]) -> str:
    """What a grant does, in the page's language."""
    if grant.kind is GrantKind.PAUSE:
        return t["child_grant_pause"]
    if grant.kind is GrantKind.BLOCK_ALL:
        return t["child_grant_block_all"]
    if grant.kind is GrantKind.BUDGET:
        return t["child_grant_budget"].format(minutes=grant.minutes, budget=grant.category)
    if grant.domain is not None:
        return t["child_grant_domain"].format(domain=grant.domain)
    return t["child_grant_category"].format(category=category_name(t, grant.category))


async def page(
    request: web.Request, name: str, *, problem: str = "", status: int = 200
) -> web.StreamResponse:
    """The page of profile `name` (already checked with `profile_of`)."""
    backend = request.app[BACKEND]
    config = backend.config
    span = request.query.get("span", "today")
    span = span if span in SPANS else "today"
    now = backend.wall_clock()
    t = texts(request)
    try:
        instance = chosen(config, request.query.get("instance"))
    except ValueError as exc:
        return render(request, "error.html", status=400, message=f"?instance=: {exc}")
    try:
        seen = await asyncio.to_thread(gather, config, name, span, now, instance)
    except FilterDnsError as exc:
        return render(request, "error.html", status=503, message=str(exc))
    done = request.query.get("done", "")
    report = seen.report
    hours = charts.hours_chart(charts.by_hour(report.heatmap))
    cats = charts.categories_chart(report.categories, lambda c: category_name(t, c))
    budgets = [b for b in seen.status.budgets if b.applies]
    return render(
        request, "child.html", status=status,
        name=name, base=f"/p/{quote(name, safe='')}", shown=config.display_name(name),
        span=span, spans=list(SPANS),
        st=seen.status, why=why(seen.status, t),
        until=clock(seen.status.until, seen.zone, now, t),
        period=seen.period, period_ends=clock(seen.period.ends, seen.zone, now, t),
        grants=[(g, grant_text(g, t), clock(g.expires_at, seen.zone, now, t))
                for g in seen.status.grants],
        budgets=budgets, blocked=[(c, category_name(t, c)) for c in seen.blocked],
        report=report, hours=hours, cats=cats,
        top=[(n, category_name(t, n.category)) for n in report.top_names],
        bedtime=report.bedtime.get(name), paused_count=report.paused.get(name, 0),
        bypass=report.bypass, alerts=seen.alerts, sites=seen.sites,
        changes=[(c, clock(c.ts, seen.zone, now, t)) for c in seen.changes],
        when=lambda ts: clock(ts, seen.zone, now, t),
        done=t[f"child_done_{done}"] if done in DONE else "", problem=problem,
    )  # fmt: skip


@routes.get("/p/{profile}")
async def child_page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["profile"]
    profile_of(request, name)
    return await page(request, name)


# The changes: one posted form each, `/p/{profile}/{change}`, then 303 back to the page.

PAUSE_FOR = {"15m": "15m", "1h": "1h", "tomorrow": None}
ALLOW_FOR = {"30m": "30m", "1h": "1h", "2h": "2h", "today": None}
MORE_MINUTES = 30


class Problem(Exception):
    """Bad input in a form: the key of the text that says so, and the values it names."""

    def __init__(self, key: str, **values: str) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True, slots=True)
class Act:
    """One change asked for: of which profile, with what, by whom, through which door, when."""

    config: Config
    name: str
    fields: dict[str, str]
    by: str
    via: str
    now: float


def pause(a: Act) -> str:
    choice = a.fields.get("for", "")
    if choice not in PAUSE_FOR:
        raise Problem("child_bad_duration")
    ends = actions.ends_for(a.config, [a.name], duration=PAUSE_FOR[choice],
                            tomorrow=choice == "tomorrow", required=True, now=a.now)  # fmt: skip
    actions.pause(a.config, [a.name], ends, by=a.by, via=a.via, now=a.now)
    return "paused"


def resume(a: Act) -> str:
    actions.resume(a.config, [a.name], by=a.by, via=a.via, now=a.now)
    return "resumed"


def more(a: Act) -> str:
    """+30 min: of a time budget (a top-up), or of a category (allowed for 30 min)."""
    kind, _, item = a.fields.get("what", "").partition(":")
    if kind == "budget":
        if item not in [b.name for b in a.config.profile(a.name).budgets]:
            raise Problem("child_bad_budget", budget=item)
        actions.top_up(a.config, a.name, item, MORE_MINUTES, by=a.by, via=a.via, now=a.now)
    elif kind == "category":
        if item not in quick(a.config):
            raise Problem("child_bad_category", category=item)
        ends = {a.name: a.now + MORE_MINUTES * 60}
        actions.allow_category(a.config, a.name, item, ends, reason="", by=a.by, via=a.via,
                               now=a.now)  # fmt: skip
    else:
        raise Problem("child_bad_choice")
    return "more"


def allow(a: Act) -> str:
    """One site allowed for 30 min, 1 h, 2 h or until midnight."""
    domain = domain_of(a.fields.get("domain", ""))
    choice = a.fields.get("for", "")
    if choice not in ALLOW_FOR:
        raise Problem("child_bad_duration")
    span = ALLOW_FOR[choice]
    if span is None:
        end = next_midnight(a.now, profile_zone(a.config, a.name))
    else:
        end = a.now + actions.seconds_of(span)
    actions.allow_domains(a.config, [a.name], [domain], {a.name: end}, by=a.by, via=a.via,
                          now=a.now)  # fmt: skip
    return "allowed"


def period(a: Act) -> str:
    """For this period (until the schedule next changes): a site allowed, or everything
    blocked (an exam)."""
    ends = {a.name: this_period(actions.policy_for(a.config, now=a.now), a.name, a.now).ends}
    if a.fields.get("what") == "block":
        actions.block_all(a.config, [a.name], ends, by=a.by, via=a.via, now=a.now)
        return "period_block"
    domain = domain_of(a.fields.get("domain", ""))
    actions.allow_domains(a.config, [a.name], [domain], ends, by=a.by, via=a.via, now=a.now)
    return "period_allow"


def revoke(a: Act) -> str:
    """End one grant of this profile (never another profile's, whatever the id posted)."""
    text = a.fields.get("grant", "")
    mine = {g.id for g in actions.active(a.config, profile=a.name, now=a.now)}
    if not text.isdigit() or int(text) not in mine:
        raise Problem("child_no_grant")
    actions.revoke(a.config, int(text), by=a.by, via=a.via, now=a.now)
    return "revoked"


CHANGES = {"pause": pause, "resume": resume, "more": more, "allow": allow, "period": period,
           "revoke": revoke}  # fmt: skip


def domain_of(text: str) -> str:
    """The domain typed (or the host of an address pasted), normalised; Problem when none."""
    text = text.strip()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    name = normalize_name(text)
    if not name:
        raise Problem("child_no_domain")
    if not is_domain_name(name):
        raise Problem("child_bad_domain", name=text)
    return name


@routes.post("/p/{profile}/{change}")
async def change(request: web.Request) -> web.StreamResponse:
    name = request.match_info["profile"]
    profile_of(request, name)
    make = CHANGES.get(request.match_info["change"])
    if make is None:
        raise web.HTTPNotFound(text=texts(request)["child_no_change"])
    backend = request.app[BACKEND]
    act = Act(backend.config, name, await form(request), account_of(request).name,
              request[VIA], backend.wall_clock())  # fmt: skip
    try:
        done = await asyncio.to_thread(make, act)
    except Problem as exc:
        problem = texts(request)[exc.key].format(**exc.values)
        return await page(request, name, problem=problem, status=400)
    except ActionError as exc:
        return await page(request, name, problem=str(exc), status=400)
    except FilterDnsError as exc:
        return render(request, "error.html", status=503, message=str(exc))
    await backend.grants_changed()
    raise web.HTTPSeeOther(f"/p/{quote(name, safe='')}?done={done}")
