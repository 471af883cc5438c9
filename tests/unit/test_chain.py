"""The chain the app builds reads like the request path, each link over the next one listed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path

import pytest

from filterdns.app import App
from filterdns.config import load_config_text
from filterdns.resolvers.base import Link

BASE = """\
server: {{listen: ["127.0.0.1:0"]{server}}}
upstreams: {{servers: ["127.0.0.1:9"]{upstreams}}}
lists: {{download_defaults: false, cache_dir: "{state}/lists"}}
log: {{database: "{state}/filterdns.db"}}
{extra}"""
METRICS = ', metrics: "127.0.0.1:0"'
CONDITIONAL = ", conditional: {home.arpa: 192.168.1.1}"
LOCAL = "local_records: {printer.school.lan: 10.6.0.5}\n"

MakeApp = Callable[..., App]


@pytest.fixture
async def make_app(tmp_path: Path) -> AsyncIterator[MakeApp]:
    """An App built (not started) from the base configuration plus server and upstream keys."""
    apps: list[App] = []

    def make(server: str, upstreams: str, extra: str = "") -> App:
        text = BASE.format(server=server, upstreams=upstreams, state=tmp_path, extra=extra)
        apps.append(App(load_config_text(text, source="<test>")))
        return apps[-1]

    yield make
    for app in apps:
        app.lists.close()
        await app.querylog.close()


@pytest.mark.parametrize(
    ("server", "upstreams", "extra", "expected"),
    [
        ("", "", "", "access local client querylog policy cache upstream"),
        (METRICS, "", "", "access local client metrics querylog policy cache upstream"),
        ("", CONDITIONAL, "", "access local client querylog policy cache conditional upstream"),
        ("", "", LOCAL, "access local client querylog localrecords policy cache upstream"),
    ],
    ids=["defaults", "metrics", "conditional", "local-records"],
)
def test_the_links_come_in_the_order_of_the_request_path(
    make_app: MakeApp, server: str, upstreams: str, extra: str, expected: str
) -> None:
    app = make_app(server, upstreams, extra)

    modules = [type(link).__module__.rsplit(".", 1)[1] for link in app.chain.links]

    assert " ".join(modules) == expected
    assert app.server.chain is app.chain.head


def test_every_link_passes_on_to_the_next_one_listed(make_app: MakeApp) -> None:
    links = make_app(METRICS, CONDITIONAL, LOCAL).chain.links

    for upper, lower in pairwise(links):
        assert isinstance(upper, Link)
        assert upper.next is lower
