"""A fake DNS over HTTPS server on loopback: TLS, HTTP/2 (h2) or HTTP/1.1, answers as FakeUpstream.

It answers `POST /dns-query` (RFC 8484) from the same record table and with the same knobs as
FakeUpstream (delay, rcode, garbage, wrong_id, silent, ...), plus HTTP ones: the status code, the
content type, and whether HTTP/2 is offered (ALPN). It counts queries (`calls`, `queries`),
requests and TLS connections (`tcp_connections`, `open_tcp_connections`), and records each
request and the SNI each client sent.

    async with FakeDoH(RECORDS, tls=server_context) as fake:
        ...  # https://127.0.0.1:{fake.port}/dns-query#doh.test
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from tests.fakes.upstream import FakeUpstream

DNS_MESSAGE = "application/dns-message"
MAX_HEAD = 16384


@dataclass
class Request:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    authority: str
    version: str  # "HTTP/2" or "HTTP/1.1"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class FakeDoH(FakeUpstream):
    """A DoH server for tests; see the module docstring. Only `port` and TLS are served."""

    def __init__(
        self,
        records: dict[tuple[str, str], list[str]] | None = None,
        *,
        tls: ssl.SSLContext,
        http2: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(records, tls=tls, **options)
        self.http2 = http2
        # knobs
        self.status = 200
        self.content_type = DNS_MESSAGE
        # records
        self.requests: list[Request] = []
        self.server_names: list[str | None] = []  # the SNI of each TLS handshake
        self._server: asyncio.Server | None = None
        self._answering: set[asyncio.Task[tuple[int, dict[str, str], bytes]]] = set()

    async def __aenter__(self) -> FakeDoH:
        assert self.tls is not None
        self.tls.set_alpn_protocols(["h2", "http/1.1"] if self.http2 else ["http/1.1"])
        self.tls.sni_callback = self._sni
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        self.tls_port = self.port
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *self._answering]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_streams()
        if self._server is not None:
            await self._server.wait_closed()

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    # connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._opened(writer)
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                await self._serve_h2(reader, writer)
            else:
                await self._serve_http1(reader, writer)
        except (asyncio.IncompleteReadError, OSError, h2.exceptions.ProtocolError, ValueError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()  # only __aexit__ cancels: end quietly
        finally:
            await self._closed(writer)

    async def _answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request, as the knobs say."""
        self.requests.append(request)
        self._notify()
        if request.method != "POST" or request.path != "/dns-query":
            return 404, {"content-type": "text/plain"}, b"not here\n"
        query = self._count(request.body, tcp=True)
        if query is None:
            return 400, {"content-type": "text/plain"}, b"not a DNS message\n"
        reply = await self._reply(query)
        if reply is None:  # silent: hold the request until the client gives up
            await asyncio.Event().wait()
        assert reply is not None
        if self.status != 200:
            return self.status, {"content-type": "text/plain"}, b"upstream trouble\n"
        return 200, {"content-type": self.content_type}, reply

    # HTTP/2

    async def _serve_h2(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        connection.initiate_connection()
        writer.write(connection.data_to_send())
        streams: dict[int, Request] = {}
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived) and event.stream_id:
                    headers = {str(k): str(v) for k, v in event.headers or []}
                    streams[event.stream_id] = Request(
                        headers.get(":method", ""),
                        headers.get(":path", ""),
                        headers.get(":authority", ""),
                        "HTTP/2",
                        headers,
                    )
                elif isinstance(event, h2.events.DataReceived) and event.stream_id:
                    request = streams[event.stream_id]
                    request.body += event.data or b""
                    connection.acknowledge_received_data(
                        event.flow_controlled_length or 0, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id:
                    request = streams.pop(event.stream_id)
                    self._spawn(self._respond_h2(connection, writer, event.stream_id, request))
                elif isinstance(event, h2.events.StreamReset) and event.stream_id:
                    streams.pop(event.stream_id, None)
            writer.write(connection.data_to_send())

    async def _respond_h2(
        self,
        connection: h2.connection.H2Connection,
        writer: asyncio.StreamWriter,
        stream_id: int,
        request: Request,
    ) -> None:
        status, headers, body = await self._answer(request)
        if writer.is_closing():
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):  # the client reset the stream
            connection.send_headers(
                stream_id,
                [(":status", str(status)), *headers.items(), ("content-length", str(len(body)))],
            )
            connection.send_data(stream_id, body, end_stream=True)
        writer.write(connection.data_to_send())

    # HTTP/1.1 (keep-alive, Content-Length bodies only)

    async def _serve_http1(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            if len(head) > MAX_HEAD:
                return
            line, *lines = head.decode("latin-1").split("\r\n")
            method, path, _version = line.split(" ", 2)
            headers = {}
            for header in lines:
                if header:
                    name, _colon, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers.get("host", ""), "HTTP/1.1", headers, body)
            # In a task of its own, so that stopping the fake cancels a delayed answer at once.
            answering = asyncio.get_running_loop().create_task(self._answer(request))
            self._answering.add(answering)
            answering.add_done_callback(self._answering.discard)
            status, answer_headers, answer = await answering
            lines = [f"HTTP/1.1 {status} X"]
            lines += [f"{name}: {value}" for name, value in answer_headers.items()]
            lines.append(f"content-length: {len(answer)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + answer)
            await writer.drain()
