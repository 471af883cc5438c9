"""`filterdns web ...`: the web app's accounts and API tokens, managed from the command line.

`web passwd NAME` makes an account or changes its password (asked twice on a terminal, or one
line on standard input with `--password-stdin`), `--role teacher --profiles 7a,7b` limits it to
some profiles (which must exist in the configuration); `web users`, `web remove NAME`; `web token
NAME` prints a new API token once (only its digest is kept), `web tokens` lists them without
their values and `web revoke-token ID` ends one. Like `grant`, these write the installation's
database, as the state directory's owner when root runs them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from filterdns.config import Config
from filterdns.errors import FilterDnsError
from filterdns.web.accounts import AccountStore, Role, check_name, check_password_text

TIME_FORMAT = "%Y-%m-%d %H:%M"


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add `web` and its subcommands to the command-line parser; returns them (for -c)."""
    web = sub.add_parser("web", help="the web app's accounts and API tokens")
    commands = web.add_subparsers(dest="web_command", required=True, metavar="COMMAND")
    passwd = commands.add_parser("passwd", help="make an account or change its password")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("--role", choices=[str(r) for r in Role],
                        help="parent (sees every profile; the default) or teacher")  # fmt: skip
    passwd.add_argument("--profiles", metavar="P1,P2", help="a teacher's profiles, by comma")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from one line of standard input")  # fmt: skip
    users = commands.add_parser("users", help="list the accounts")
    remove = commands.add_parser("remove", help="remove an account, its tokens and sessions")
    remove.add_argument("name", metavar="NAME")
    token = commands.add_parser("token", help="a new API token for an account (shown once)")
    token.add_argument("name", metavar="NAME")
    token.add_argument("--label", default="", help="what the token is for")
    tokens = commands.add_parser("tokens", help="list the API tokens (never their values)")
    revoke = commands.add_parser("revoke-token", help="end an API token now")
    revoke.add_argument("id", type=int, metavar="ID")
    for listing in (users, tokens):
        listing.add_argument("--json", action="store_true", help="machine-readable output")
    return [web, passwd, users, remove, token, tokens, revoke]


def web(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Run one `web` subcommand; errors go to standard error in one line, exit 1."""
    run: Callable[[AccountStore, Config, argparse.Namespace, Console], int] = {
        "passwd": _passwd,
        "users": _users,
        "remove": _remove,
        "token": _token,
        "tokens": _tokens,
        "revoke-token": _revoke,
    }[args.web_command]
    try:
        return run(AccountStore(config.log), config, args, console)
    except FilterDnsError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]{escape(str(exc))}[/red]")
        return 1


def _passwd(store: AccountStore, config: Config, args: argparse.Namespace, console: Console) -> int:
    name = check_name(args.name)
    role = Role(args.role) if args.role else None
    profiles = _profiles(config, args.profiles)
    old = store.get(name)
    becomes = role or (old.role if old else Role.PARENT)
    known = ", ".join(p.name for p in config.profiles)
    if becomes is Role.TEACHER and not (profiles or (old and old.profiles)):
        raise FilterDnsError(f"a teacher needs --profiles (one or more of: {known})")
    if becomes is Role.PARENT and profiles:
        raise FilterDnsError(f"a parent sees every profile: add --role teacher to limit {name}")
    password = _read_password(name, from_stdin=args.password_stdin)
    made = store.set_password(name, password, role=role, profiles=profiles)
    what = "made" if old is None else "changed the password of"
    seen = f" (sees {', '.join(made.profiles)})" if made.role is Role.TEACHER else ""
    ended = "; its sessions ended" if old is not None else ""
    console.print(f"{what} {made.role} account {escape(made.name)}{escape(seen)}{ended}",
                  highlight=False)  # fmt: skip
    return 0


def _profiles(config: Config, text: str | None) -> list[str] | None:
    """The --profiles given, each a profile of the configuration; None when not given."""
    if text is None:
        return None
    given = [p.strip() for p in text.split(",") if p.strip()]
    known = [p.name for p in config.profiles]
    if not given:
        raise FilterDnsError(f"--profiles names none; profiles: {', '.join(known)}")
    for profile in given:
        if profile not in known:
            raise FilterDnsError(f"no profile {profile!r}; profiles: {', '.join(known)}")
    return given


def _read_password(name: str, *, from_stdin: bool) -> str:
    """One line of standard input, or asked twice on the terminal; never echoed or shown."""
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    elif not sys.stdin.isatty():
        raise FilterDnsError("no terminal to ask the password on: give it with --password-stdin")
    else:
        password = getpass.getpass(f"new password for {name}: ")
        check_password_text(password)
        if getpass.getpass("the same again: ") != password:
            raise FilterDnsError("the two passwords differ; nothing was changed")
    check_password_text(password)
    return password


def _users(store: AccountStore, config: Config, args: argparse.Namespace, console: Console) -> int:
    accounts = store.accounts()
    if args.json:
        print(json.dumps([a.to_json() for a in accounts], ensure_ascii=False))
        return 0
    if not accounts:
        console.print("no web accounts yet: filterdns web passwd NAME makes one")
        return 0
    table = Table("account", "role", "profiles")
    for account in accounts:
        seen = ", ".join(account.profiles) if account.role is Role.TEACHER else "all"
        table.add_row(escape(account.name), str(account.role), escape(seen))
    console.print(table)
    return 0


def _remove(store: AccountStore, config: Config, args: argparse.Namespace, console: Console) -> int:
    if not store.remove(args.name):
        raise FilterDnsError(f"no web account {args.name!r}")
    console.print(f"removed web account {escape(args.name)}, its tokens and sessions")
    return 0


def _token(store: AccountStore, config: Config, args: argparse.Namespace, console: Console) -> int:
    token = store.new_token(args.name, label=args.label)
    print(token)  # alone on standard output, so a script can keep it
    note = Console(stderr=True, soft_wrap=True)
    note.print(f"a new API token for {escape(args.name)}: it is shown only now, keep it safe "
               "(only its digest is stored; `filterdns web revoke-token ID` ends it)",
               highlight=False)  # fmt: skip
    return 0


def _tokens(store: AccountStore, config: Config, args: argparse.Namespace, console: Console) -> int:
    tokens = store.tokens()
    if args.json:
        print(json.dumps([t.to_json() for t in tokens], ensure_ascii=False))
        return 0
    if not tokens:
        console.print("no API tokens: filterdns web token NAME makes one")
        return 0
    table = Table("id", "account", "label", "made", "last used")
    for t in tokens:
        used = "never" if t.last_used is None else _when(t.last_used)
        table.add_row(str(t.id), escape(t.account), escape(t.label), _when(t.created_at), used)
    console.print(table)
    return 0


def _revoke(store: AccountStore, config: Config, args: argparse.Namespace, console: Console) -> int:
    if not store.revoke_token(args.id):
        raise FilterDnsError(f"no API token #{args.id}")
    console.print(f"revoked API token #{args.id}")
    return 0


def _when(ts: float) -> str:
    return time.strftime(TIME_FORMAT, time.localtime(ts))
