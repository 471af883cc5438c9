"""Start the whole proxy from inline YAML on port 0 and query it as a client would (dnspython)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import dns.asyncquery
import dns.edns
import dns.message
import dns.rdatatype

from filterdns.app import App
from filterdns.config import load_config_text
from filterdns.dns.transport import Transport
from filterdns.policy.neighbors import Neighbours

LISTS_TIMEOUT = 60.0  # the longest a test waits for the configured lists to be built


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Proxy:
    """A running proxy and a dnspython client pointed at it."""

    app: App
    host: str
    port: int

    async def query(
        self,
        name: str,
        qtype: str = "A",
        *,
        tcp: bool = False,
        edns: int | None = 1232,
        timeout: float = 3.0,
        source: str | None = None,
    ) -> dns.message.Message:
        """Send one query over UDP (no TC retry) or TCP, from `source` if given; the reply."""
        message = dns.message.make_query(name, qtype, use_edns=edns is not None,
                                         payload=edns or 512)  # fmt: skip
        if tcp:
            return await dns.asyncquery.tcp(
                message, self.host, port=self.port, timeout=timeout, source=source
            )
        return await dns.asyncquery.udp(
            message, self.host, port=self.port, timeout=timeout, ignore_trailing=False,
            source=source,
        )  # fmt: skip


@asynccontextmanager
async def running_proxy(
    yaml_text: str,
    *,
    transport: Transport | None = None,
    clock: Callable[[], float] | None = None,
    wall_clock: Callable[[], float] | None = None,
    lists_ready: bool = True,
    neighbours: Neighbours | None = None,
) -> AsyncIterator[Proxy]:
    """The proxy built from `yaml_text` (dedented), listening on its first address.

    It answers at once, maybe from the previous index while the configured lists are built in
    the background; with `lists_ready` (the default) this waits until they serve.
    """
    config = load_config_text(textwrap.dedent(yaml_text), source="<test>")
    clocks = {"clock": clock, "wall_clock": wall_clock}
    given = {k: v for k, v in clocks.items() if v}
    app = App(config, transport=transport, neighbours=neighbours, **given)
    bound = await app.start()
    try:
        if lists_ready:
            await asyncio.wait_for(app.lists.ready.wait(), timeout=LISTS_TIMEOUT)
        yield Proxy(app, bound[0].host, bound[0].port)
    finally:
        await app.stop()


def config_for(
    *upstreams: str, extra: str = "", listen: str = "127.0.0.1:0", server: str = ""
) -> str:
    """A small config: listen on port 0, forward to `upstreams`, plus `extra` YAML lines;
    `server` holds more keys of the server section, e.g. "rate_limit: null"."""
    servers = ", ".join(f'"{u}"' for u in upstreams)
    more = "".join(f"  {line}\n" for line in textwrap.dedent(server).splitlines() if line)
    return (
        f'server:\n  listen: ["{listen}"]\n{more}'
        f"upstreams:\n  servers: [{servers}]\n  timeout: 1s\n"
        # tests talk to loopback only: never download the default lists
        "lists:\n  download_defaults: false\n" + textwrap.dedent(extra)
    )


def addresses(reply: dns.message.Message) -> list[str]:
    """Every A/AAAA address in the answer section, in order."""
    return [
        rdata.address
        for rrset in reply.answer
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for rdata in rrset
    ]
