"""Upstream exchanges over DNS over HTTPS (RFC 8484), through httpx.

One HTTP client per server, made on first use and closed by `close()`; it speaks HTTP/2 where
the server offers it (many queries in flight on one connection) and keeps HTTP/1.1 connections
alive for reuse; idle ones close after `tcp_idle` seconds. A query is a POST of the wire message
with id 0 (as the RFC recommends, so HTTP caches can share answers); the answer must be status
200, type application/dns-message, and a response to the question. The connection goes to the
configured address; the certificate is checked against the server name when one is configured
(also sent as SNI and HTTP Host), else against the address. No proxy or other setting is taken
from the environment.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from filterdns.config import UpstreamServer
from filterdns.dns import outgoing
from filterdns.errors import UpstreamError

if TYPE_CHECKING:  # httpx (~5 MB) is imported on the first DNS-over-HTTPS exchange only
    import httpx

DNS_MESSAGE = "application/dns-message"
HTTP_CONNECTIONS = 8  # per DoH server; HTTP/2 needs one, HTTP/1.1 one per query in flight
MAX_MESSAGE = 65535


class DohClients:
    """The HTTP clients of the DNS-over-HTTPS upstreams, one per server, made on first use."""

    def __init__(self, ssl_context: ssl.SSLContext | None, tcp_idle: float) -> None:
        self.tcp_idle = tcp_idle
        # The HTTP library sets its ALPN list on the context it is given: a default context of
        # its own then, so DNS-over-TLS connections never offer h2.
        self._ssl_context = ssl_context
        self._clients: dict[UpstreamServer, httpx.AsyncClient] = {}

    async def ask(self, server: UpstreamServer, query: bytes, question: bytes) -> bytes:
        """The answer of `server` to `query` (whose id is 0), checked as the RFC requires."""
        import httpx  # noqa: PLC0415 - only configurations with a DoH upstream pay for it

        try:
            reply = await self._post(server, query)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            tls = _ssl_error(exc)
            if tls is not None:
                raise UpstreamError(f"upstream {server}: TLS handshake failed: {tls}") from None
            what = "cannot connect" if isinstance(exc, httpx.ConnectError) else "HTTPS failed"
            raise UpstreamError(f"upstream {server}: {what}: {exc or type(exc).__name__}") from None
        if not outgoing.is_reply_to(reply, 0, question):
            raise UpstreamError(f"upstream {server} answered garbage")
        return reply

    async def close(self) -> None:
        """Close every client and its connections."""
        clients = list(self._clients.values())
        self._clients.clear()
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)

    async def _post(self, server: UpstreamServer, query: bytes) -> bytes:
        """The body of the answer to a POST of `query`; UpstreamError for any other answer."""
        host = f"[{server.host}]" if ":" in server.host else server.host
        url = f"https://{host}:{server.port}{server.path}"
        headers = {"accept": DNS_MESSAGE, "content-type": DNS_MESSAGE}
        extensions: dict[str, Any] = {}
        if server.sni:
            default_port = server.port == 443
            headers["host"] = server.sni if default_port else f"{server.sni}:{server.port}"
            extensions["sni_hostname"] = server.sni
        body = bytearray()
        async with self._client(server).stream(
            "POST", url, content=query, headers=headers, extensions=extensions
        ) as response:
            if response.status_code != 200:
                raise UpstreamError(f"upstream {server}: HTTP {response.status_code}")
            kind = response.headers.get("content-type", "")
            if kind.partition(";")[0].strip().lower() != DNS_MESSAGE:
                raise UpstreamError(
                    f"upstream {server}: answered with content type {kind!r}, not {DNS_MESSAGE}"
                )
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_MESSAGE:
                    raise UpstreamError(f"upstream {server}: answer longer than 65535 bytes")
        return bytes(body)

    def _client(self, server: UpstreamServer) -> httpx.AsyncClient:
        client = self._clients.get(server)
        if client is None:
            import httpx  # noqa: PLC0415 - see ask

            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            client = httpx.AsyncClient(
                verify=self._ssl_context,
                http2=True,
                timeout=None,  # the exchange's deadline bounds every step
                limits=httpx.Limits(
                    max_connections=HTTP_CONNECTIONS,
                    max_keepalive_connections=HTTP_CONNECTIONS,
                    keepalive_expiry=self.tcp_idle,
                ),
                trust_env=False,
                follow_redirects=False,
                headers={"user-agent": "filterdns", "accept-encoding": "identity"},
            )
            self._clients[server] = client
        return client


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an HTTP library error, if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
