"""The import layers of docs/architecture.md: a module imports only from its own row or rows
above. Packages group modules by concern (dns, config, policy, lists, querylog, resolvers, ops,
cli); the layers cut across them, so each module has its own row here, keyed by its dotted path
under `filterdns` (a package listed whole, like `lists`, covers every module in it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "filterdns"

LAYERS = {
    "": 0,  # the package itself: its version
    "errors": 0, "memo": 0, "regexes": 0, "wheel": 0, "compiled": 0,
    "dns.model": 0, "dns.names": 0, "dns.wire": 0, "dns.addresses": 0, "dns.records": 0,
    "dns.replies": 0, "dns.outgoing": 0, "dns.rich": 0,
    "policy.schedule": 1, "policy.timezones": 1, "config.duration": 1,
    "querylog.translations": 1,
    "config": 2, "config.walker": 2, "config.values": 2, "config.fragments": 2,
    "config.readers": 2, "config.server": 2, "config.upstreams": 2, "config.cache": 2,
    "config.log": 2, "config.lists": 2, "config.blocking": 2, "config.report": 2,
    "config.schedules": 2, "config.bands": 2, "config.profiles": 2, "config.clients": 2,
    "config.alerts": 2, "config.model": 2, "config.loader": 2, "config.schema": 2,
    "config.defaults": 2, "config.localrecords": 2, "config.budgets": 2, "config.web": 2,
    "lists": 3,
    "lists.nametable": 3,  # the name model's weights in arrays (lists.namemodel reads them)
    "policy.clients": 3, "policy.neighbors": 3, "policy.decisions": 3, "policy.answers": 3,
    "policy.effective": 3, "policy.protection": 3, "policy.values": 3, "policy.special": 3,
    "policy.state": 3, "policy.steps": 3, "policy.localzone": 3, "policy.budgets": 3,
    "dns.transport": 4, "dns.streams": 4, "dns.doh": 4, "dns.ratelimit": 4, "dns.tcpslots": 4,
    "dns.udpsockets": 4,  # the shared UDP sockets to the upstreams, used by dns.transport
    "dns.listeners": 4,  # the listening sockets: bound by the server, or per worker by app.workers
    "dns.mmsg": 4,  # the UDP listener's socket calls: recvmmsg/sendmmsg batches, sendto
    "querylog.dbfile": 4, "querylog.schema": 4, "querylog.rows": 4, "querylog.logfile": 4,
    "querylog.store": 4, "querylog.pglog": 4, "querylog.pgconn": 4, "querylog.pgschema": 4,
    "querylog.retention": 4, "querylog.clientkey": 4, "querylog.alerts": 4,
    "querylog.delivery": 4, "policy.grants": 4, "policy.legacy_grants": 4,
    "querylog.shareddb": 4, "querylog.pgshared": 4, "policy.pggrants": 4,
    "querylog.changes": 4, "querylog.notices": 4, "querylog.firing": 4, "querylog.fold": 4,
    "ops.sdnotify": 4, "ops.privileges": 4, "ops.runstate": 4, "ops.fdlimit": 4, "ops.collector": 4,
    "web.accounts": 4, "web.asks": 4,  # the web app's stores (the rest of `web` is layer 7)
    "resolvers": 5, "actions": 5,
    "resolvers.answermemo": 5,  # the server's answer memo and what its chain lends it
    "dns.server": 6, "ops.metrics": 6, "ops.gauges": 6,
    "app": 7, "app.lifecycle": 7, "app.reload": 7, "app.watch": 7, "app.webside": 7,
    # server.workers: the channel, the main process's side and a worker's side.
    "app.channel": 7, "app.workers": 7, "app.worker": 7,
    # The web app: beside the App that serves it (it reads the running policy and configuration).
    "web": 7,
    "web.charts": 7,  # the child page's SVG charts (pure geometry)
    "querylog.report": 7, "querylog.report.terminal": 7, "querylog.tail": 7,
    "querylog.report.source": 7,  # the report's queries on SQLite or PostgreSQL
    "querylog.pgtail": 7,  # `tail` on a PostgreSQL log many instances write
    "cli.main": 8, "cli.admin": 8, "cli.control": 8, "cli.report": 8, "cli.pause": 8,
    "cli.lists": 8, "cli.budget": 8, "cli.status": 8, "cli.web": 8, "cli.worker": 8,
    "__main__": 8,
}  # fmt: skip

# Each third-party library lives in one place.
THIRD_PARTY = {
    "dnslib": {"dns.rich"},
    "yaml": {"config.walker"},  # the section modules see YAML nodes only through the Walker
    # aiosqlite: the query log's writer; its rows and statements, and its connection to the file
    "aiosqlite": {"querylog.rows", "querylog.logfile"},
    # psycopg 3: the query log on PostgreSQL; its connections (shared with readers) and writer
    # and `tail`'s follower, which tells an outage from a row
    "psycopg": {"querylog.pgconn", "querylog.pglog", "querylog.pgshared", "querylog.pgtail"},
    # rich: the renderers (the report's terminal view, tail's live table) and the command line
    "rich": {
        "querylog.report.terminal",
        "querylog.tail",
        "cli.main",
        "cli.admin",
        "cli.pause",
        "cli.budget",
        "cli.status",
        "cli.control",
        "cli.report",
        "cli.lists",
        "cli.web",
    },
    # uvloop: the event loop of `serve` and of its worker processes (cli.worker, which does not
    # import cli.main: each worker would carry the other commands' modules)
    "uvloop": {"cli.main", "cli.worker"},
    # aiohttp: the one HTTP server, for the web app, its API, the block page and /metrics
    # (the web app's modules of layer 7: its pages, API, server and renderer; not its stores)
    "aiohttp": {"web.*"},
    # jinja2: the web app's templates, escaped by default
    "jinja2": {"web.render"},
    # httpx: the one HTTP client stack, for DNS over HTTPS, list downloads and alert webhooks
    "httpx": {"dns.doh", "lists.http", "querylog.delivery"},
    # mypy_extensions: the decorator that keeps a dict subclass an ordinary class when
    # the hot modules are compiled (filterdns.compiled); it does nothing at run time
    "mypy_extensions": {"memo"},
}


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if not (p.name == "__init__.py" and not p.read_text().strip())
    )


def _row(dotted: str) -> str | None:
    """The LAYERS key covering `dotted` (a module path under filterdns), or None."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in LAYERS:
            return key
    return None


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_from_its_layer_or_above(path: Path) -> None:
    me = _row(_name(path))
    assert me is not None, f"{_name(path)} has no layer in docs/architecture.md; add it here"
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "filterdns" and len(parts) > 1:
            row = _row(".".join(parts[1:]))
            if row is not None:
                assert LAYERS[row] <= LAYERS[me], f"{me} (layer {LAYERS[me]}) imports {name}"
        if parts[0] in THIRD_PARTY:
            allowed = THIRD_PARTY[parts[0]]
            mine = {me, _name(path)}
            mine |= {f"{n.rsplit('.', 1)[0]}.*" for n in mine if "." in n and LAYERS[me] >= 7}
            assert mine & allowed, f"{parts[0]} may be imported only in {THIRD_PARTY[parts[0]]}"


def test_every_row_names_a_module() -> None:
    known = {_name(path) for path in PACKAGE.rglob("*.py")}
    assert {
        row for row in LAYERS if not any(k == row or k.startswith(f"{row}.") for k in known)
    } == set()
