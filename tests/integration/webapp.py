"""The whole proxy with its web app on port 0, accounts made as `filterdns web passwd` makes
them, and an HTTP client signed in as one of them."""

from __future__ import annotations

import re
import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from filterdns.web.accounts import AccountStore, Role
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, config_for, running_proxy

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class WebApp:
    """A running proxy with its web app; `url` is the app's base URL, no trailing slash."""

    proxy: Proxy
    upstream: FakeUpstream
    url: str
    database: Path

    def account(self, name: str, role: Role = Role.PARENT, profiles: Sequence[str] = ()) -> None:
        """An account with PASSWORD, made the way the command line makes it."""
        AccountStore(self.database).set_password(
            name, PASSWORD, role=role, profiles=list(profiles) or None
        )

    def token(self, name: str) -> str:
        return AccountStore(self.database).new_token(name, "test")

    @asynccontextmanager
    async def client(self, name: str | None = None) -> AsyncIterator[Signed]:
        """An HTTP client (cookies kept), signed in as `name` when given."""
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        async with aiohttp.ClientSession(self.url, cookie_jar=jar) as session:
            signed = Signed(session, "")
            if name is not None:
                reply = await session.post("/login", data={"name": name, "password": PASSWORD},
                                           allow_redirects=False)  # fmt: skip
                assert reply.status == 303, await reply.text()
                signed.csrf = await signed.csrf_of("/")
            yield signed


@dataclass
class Signed:
    """A client session and the CSRF token of its sign-in."""

    http: aiohttp.ClientSession
    csrf: str

    async def csrf_of(self, path: str) -> str:
        reply = await self.http.get(path)
        found = CSRF.search(await reply.text())
        assert found is not None, f"no form on {path}"
        return found.group(1)

    async def post(self, path: str, **fields: str) -> aiohttp.ClientResponse:
        """A form post with the session's CSRF token, not following the redirect."""
        data = {"csrf": self.csrf, **fields}
        return await self.http.post(path, data=data, allow_redirects=False)


@asynccontextmanager
async def running_web(
    tmp_path: Path,
    extra: str = "",
    answers: dict[tuple[str, str], list[str]] | None = None,
    **proxy_options: object,
) -> AsyncIterator[WebApp]:
    """The proxy from a small config plus `extra` YAML, its web app on 127.0.0.1 port 0, its
    database in `tmp_path`, forwarding to a fake upstream that knows `answers`."""
    database = tmp_path / "filterdns.db"
    async with FakeUpstream(answers or {("example.com", "A"): ["93.184.216.34"]}) as upstream:
        text = config_for(
            upstream.address,
            extra=f"log: {{database: {database}}}\n" + textwrap.dedent(extra),
        )
        if "\nweb:" not in text:
            text += 'web: {listen: "127.0.0.1:0"}\n'
        async with running_proxy(text, **proxy_options) as proxy:  # type: ignore[arg-type]
            where = proxy.app.web_address
            assert where is not None
            yield WebApp(proxy, upstream, f"http://{where.host}:{where.port}", database)
