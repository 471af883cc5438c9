"""The policy's commands: `explain`, `grant`, `grants` and `revoke`.

`explain` builds the same `Policy` the server builds (same configuration, same list index on
disk, same grants) and calls the same `Policy.decide`, asking it for the trace, so what it
prints is what `serve` answers at that instant.

`grant`, `grants` and `revoke` read and write the grants in the installation's database
(grants.py) through `filterdns.actions`, as the web app does; a grant that cannot be saved says
why in one line and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import re
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape

from filterdns import actions
from filterdns.cli.budget import top_up
from filterdns.cli.pause import describe_row, who
from filterdns.config import SHIPPED_PREFIX, Config
from filterdns.dns import names, outgoing, wire
from filterdns.dns.model import Kind, Request, Response
from filterdns.dns.names import normalize_name
from filterdns.dns.rich import answer_records
from filterdns.dns.transport import Transport
from filterdns.errors import FilterDnsError
from filterdns.lists import namemodel
from filterdns.lists.catalog import ListSet
from filterdns.lists.shipped import shipped_path
from filterdns.policy.answers import AnswerJudge
from filterdns.policy.clients import ClientDirectory, ClientMatch
from filterdns.policy.decisions import Policy
from filterdns.policy.grants import grant_store
from filterdns.policy.neighbors import Neighbours, normalize_mac
from filterdns.policy.timezones import zone_of
from filterdns.policy.values import BLOCKING_KINDS, Action, Decision, Grant
from filterdns.resolvers.chain import build_forwarder
from filterdns.resolvers.querylog import qtype_number

TIME_FORMAT = "%Y-%m-%d %H:%M"


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add the policy commands to the command-line parser; returns them (for -c and --json)."""
    explain = sub.add_parser("explain", help="why a name is blocked or allowed, step by step")
    explain.add_argument("name", help="the domain name asked")
    explain.add_argument(
        "--client", required=True, help="an IP address, a MAC address or a profile"
    )
    explain.add_argument("--at", help='the instant, "YYYY-MM-DD HH:MM" in the profile\'s time zone')
    explain.add_argument("--type", default="A", help="the query type (default A)")
    explain.add_argument(
        "--resolve",
        action="store_true",
        help="also ask the upstreams and judge the answer: the names it leads to (CNAME "
        "cloaking) and private addresses (rebinding)",
    )
    grant = sub.add_parser(
        "grant", help="allow a domain or a category for one profile, for a while"
    )
    grant.add_argument("profile")
    what = grant.add_mutually_exclusive_group(required=True)
    what.add_argument("--allow", metavar="DOMAIN", help="a domain (and its subdomains)")
    what.add_argument("--category", help="a category normally blocked for the profile")
    what.add_argument("--budget", help="a time budget of the profile: --for minutes more today")
    grant.add_argument(
        "--for", dest="duration", required=True, help="how long, with a unit: 45m, 2h, 1d"
    )
    grant.add_argument("--reason", default="", help="a note kept with the grant")
    grants = sub.add_parser("grants", help="the grants in force")
    revoke = sub.add_parser("revoke", help="end a grant now")
    revoke.add_argument("id", type=int)
    return [explain, grant, grants, revoke]


# explain


def explain(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Print the decision trace for one name, client and instant."""
    name = normalize_name(args.name)
    listset = ListSet(config.lists, config.categories)
    result = listset.build()
    listset.index = result.index
    store = grant_store(config.log)
    try:
        store.reload_if_changed()
    except FilterDnsError as exc:  # the grants cannot be read: explain says so, without them
        console.print(f"[yellow]warning: {escape(str(exc))}[/yellow]", highlight=False)
    try:
        model = namemodel.for_config(config.blocking.name_model)
        policy = Policy(config, lambda: listset.index, store.current, model)
        match = _client(config, args.client)
        if match is None:
            profiles = ", ".join(p.name for p in config.profiles)
            console.print(
                f"[red]{escape(args.client)} is not an address, a MAC address or a profile "
                f"(profiles: {escape(profiles)})[/red]"
            )
            return 1
        profile = config.profile(match.profile)
        zone = zone_of(profile.timezone, config.server.timezone)
        if args.at:
            try:
                when = datetime.strptime(args.at, TIME_FORMAT).replace(tzinfo=zone)
            except ValueError:
                console.print(f'[red]--at "{escape(args.at)}" is not "YYYY-MM-DD HH:MM"[/red]')
                return 1
            now = when.timestamp()
        else:
            now = time.time()
        decision = policy.decide(match.profile, name, now, explain=True)
        if args.resolve and decision.action == Action.ALLOW:
            decision = _judge_answer(config, policy, decision, name=name, qtype=args.type, now=now)
        line = _line_of(decision)
        if args.json:
            data = _explain_json(
                decision=decision, match=match, band=profile.age_band, now=now, zone=zone, line=line
            )
            print(json.dumps(data))
        else:
            _print_explain(
                console,
                decision=decision,
                match=match,
                band=profile.age_band,
                name=name,
                now=now,
                zone=zone,
                line=line,
            )
    finally:
        listset.close()
        store.close()
    return 0


def _judge_answer(
    config: Config, policy: Policy, decision: Decision, *, name: str, qtype: str, now: float
) -> Decision:
    """Step 8 for real: ask the upstreams, then judge what the answer leads to, as serve does."""
    trace = list(decision.trace)
    number = qtype_number(qtype)
    if number is None:
        trace.append(f"8. not asked: {qtype!r} is not a query type like A, AAAA or HTTPS")
        return replace(decision, trace=tuple(trace))
    local = policy.local.answer(name, number)
    if local is not None:  # as serve does: a local name never reaches the upstreams
        records = answer_records(local) or ["(no records: NODATA)"]
        trace.append("3. answered locally, upstreams not asked: " + "; ".join(records))
        return replace(decision, trace=tuple(trace))
    response = asyncio.run(_ask(config, name, number))
    if response.kind is Kind.FAILED:
        trace.append(f"8. the upstreams could not be asked: {response.reason}")
        return replace(decision, trace=tuple(trace))
    records = answer_records(response.answer) or ["(no records)"]
    trace.append("8. the upstreams answered: " + "; ".join(records))
    found = AnswerJudge(config, policy).judge(decision, name, response.answer, now, trace=trace)
    if found is None:
        return replace(decision, trace=tuple(trace))
    return replace(found, ttl_cap=decision.ttl_cap, trace=tuple(trace))


async def _ask(config: Config, name: str, qtype: int) -> Response:
    """The answer of the configured upstreams (and conditional routes) for one question."""
    transport = Transport()
    try:
        head = build_forwarder(config, transport)
        packet = outgoing.make_query(names.text_to_wire(name), qtype, wire.CLASS_IN, 0)
        return await head.resolve(Request(wire.parse_query(packet), "", 0, "udp", 0.0))
    finally:
        await transport.close()


def _client(config: Config, text: str) -> ClientMatch | None:
    rules = config.clients
    directory = ClientDirectory(rules, config.default_profile)
    if any(p.name == text for p in config.profiles):
        return ClientMatch(None, text, f"profile {text}")
    try:
        mac = normalize_mac(text)
    except ValueError:
        pass
    else:
        return directory.match_mac(mac) or ClientMatch(None, config.default_profile, "default")
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if rules:  # as the server does: the neighbour table finds MAC rules and a device's others
        neighbours = Neighbours()
        neighbours.use(neighbours.read())
        directory = ClientDirectory(rules, config.default_profile, neighbours)
    return directory.match(text)


def _line_of(decision: Decision) -> int | None:
    """The line of the list file where the matching name stands (None when unknown)."""
    if decision.source is None or decision.listed is None:
        return None
    path = decision.source
    if path.startswith(SHIPPED_PREFIX):
        path = str(shipped_path(path))
    pattern = re.compile(rf"(?:^|[\s|/=\"*.]){re.escape(decision.listed)}(?:[\s^/$\".]|$)")
    try:
        with Path(path).open("rb") as lines:
            for number, raw in enumerate(lines, 1):
                if pattern.search(raw.decode("utf-8", "replace").lower()):
                    return number
    except OSError:
        return None
    return None


def _when(timestamp: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(timestamp, zone).strftime(f"{TIME_FORMAT} %Z")


def _verdict(decision: Decision) -> str:
    return {
        Action.ALLOW: "ALLOWED",
        Action.BLOCK: "BLOCKED",
        Action.REWRITE: f"REWRITTEN to {decision.target}",
        Action.NXDOMAIN: "BLOCKED (NXDOMAIN)",
        Action.NODATA: "BLOCKED (no data)",
    }[decision.action]


def _print_explain(
    console: Console,
    *,
    decision: Decision,
    match: ClientMatch,
    band: str,
    name: str,
    now: float,
    zone: ZoneInfo,
    line: int | None,
) -> None:
    who = f"{match.name} ({match.how})" if match.name else match.how
    console.print(f"[bold]{escape(name)}[/bold] at {_when(now, zone)}", highlight=False)
    console.print(f"1. client: {escape(who)}", highlight=False)
    console.print(
        f"2. profile: {escape(decision.profile)} (age band {escape(band)})", highlight=False
    )
    for step in decision.trace:
        console.print(escape(step), highlight=False)
    color = "green" if decision.action == Action.ALLOW else "red"
    console.print(f"[{color}]verdict: {escape(_verdict(decision))}[/{color}]", highlight=False)
    console.print(f"reason: {escape(decision.reason)}", highlight=False)
    if decision.rule:
        console.print(f"rule: {escape(decision.rule)}", highlight=False)
    if decision.source:
        where = f"{decision.source}:{line}" if line else decision.source
        console.print(f"list: {escape(where)} ({escape(decision.listed or '')})", highlight=False)
    if decision.ttl_cap is not None:
        console.print(
            f"next change: {_when(now + decision.ttl_cap, zone)} (answers live at most "
            f"{decision.ttl_cap} s)",
            highlight=False,
        )
    else:
        console.print("next change: none scheduled", highlight=False)


def _explain_json(
    *,
    decision: Decision,
    match: ClientMatch,
    band: str,
    now: float,
    zone: ZoneInfo,
    line: int | None,
) -> dict[str, object]:
    return {
        "client": {"name": match.name, "how": match.how},
        "profile": decision.profile,
        "age_band": band,
        "at": _when(now, zone),
        "action": decision.action,
        "step": decision.step,
        "reason": decision.reason,
        "category": decision.category,
        "rule": decision.rule,
        "source": decision.source,
        "line": line,
        "listed": decision.listed,
        "target": decision.target,
        "ttl_cap": decision.ttl_cap,
        "next_change": None if decision.ttl_cap is None else _when(now + decision.ttl_cap, zone),
        "trace": list(decision.trace),
    }


# grants


def _error(console: Console, message: str) -> int:
    console.print(f"[red]{escape(message)}[/red]", highlight=False)
    return 1


def grant(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Store a timed grant; the running server applies it within a second."""
    try:
        actions.check_profiles(config, [args.profile])
        now = time.time()
        seconds = actions.seconds_of(args.duration)
        if args.budget is not None:
            return top_up(config, args, seconds, console)
        ends = {args.profile: now + seconds}
        if args.allow is not None:
            (made,) = actions.allow_domains(config, [args.profile], [args.allow], ends,
                                            reason=args.reason, by=who(), via="cli",
                                            now=now)  # fmt: skip
        else:
            (made,) = actions.allow_category(config, args.profile, args.category, ends,
                                             reason=args.reason, by=who(), via="cli",
                                             now=now)  # fmt: skip
    except FilterDnsError as exc:
        return _error(console, str(exc))
    if args.json:
        print(json.dumps(_grant_json(made)))
    else:
        console.print(f"[green]made {escape(made.describe())} for {escape(made.profile)}[/green]")
    return 0


def list_grants(config: Config, args: argparse.Namespace, console: Console) -> int:
    """The grants in force, soonest to end first."""
    try:
        active = actions.active(config)
    except FilterDnsError as exc:
        return _error(console, str(exc))
    if args.json:
        print(json.dumps([_grant_json(g) for g in active]))
        return 0
    if not active:
        console.print("no grants in force")
    now = time.time()
    for g in active:
        if g.kind in BLOCKING_KINDS:  # a pause or a block-all override
            console.print(escape(describe_row(config, g)), highlight=False)
            continue
        left = int(g.expires_at - now)
        what = g.domain or f"category {g.category}"
        note = f" - {g.reason}" if g.reason else ""
        console.print(
            f"#{g.id} {escape(g.profile)}: {escape(what)}, {left // 60} min {left % 60} s left"
            f"{escape(note)}",
            highlight=False,
        )
    return 0


def revoke(config: Config, args: argparse.Namespace, console: Console) -> int:
    """End a grant now."""
    try:
        gone = actions.revoke(config, args.id, by=who(), via="cli")
    except FilterDnsError as exc:
        return _error(console, str(exc))
    if gone is None:
        console.print(f"[red]no grant #{args.id}[/red]")
        return 1
    console.print(f"revoked {escape(gone.describe())}")
    return 0


def _grant_json(g: Grant) -> dict[str, object]:
    return g.to_json()
