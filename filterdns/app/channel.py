"""The channel between the main process and one worker: pickled messages on a Unix socket.

Both ends are this program, started together (app.workers), so a message is a pickled tuple
`(kind, payload)` behind a 4-byte length. Writing never waits: a message goes to the
transport's buffer, and a sender whose buffer already holds `MAX_BUFFERED` bytes (the other end
stopped reading) is told so and drops, as the query log drops rows when its queue is full.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from typing import Any

from filterdns.querylog.store import LogRecord

_LENGTH = struct.Struct("!I")
MAX_BUFFERED = 8 * 2**20  # bytes waiting to be sent before messages are dropped
MAX_MESSAGE = 256 * 2**20  # a longer length prefix is a broken channel

Message = tuple[str, Any]
Row = tuple[Any, ...]  # a LogRecord's fields in order: pickled ten times faster than the object


def row_of(r: LogRecord) -> Row:
    """The fields of a log row, as the channel carries them."""
    return tuple(r)


def record_of(row: Row) -> LogRecord:
    """The log row back from its fields."""
    return LogRecord._make(row)


class Channel:
    """One end of a worker's channel."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def over(cls, sock: socket.socket) -> Channel:
        """The channel on one end of a socket pair."""
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**20)
        return cls(reader, writer)

    def send(self, kind: str, payload: Any) -> bool:
        """Queue one message without waiting; False when it cannot be (buffer full, closed)."""
        writer = self.writer
        if writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            return False
        data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        writer.write(_LENGTH.pack(len(data)) + data)
        return True

    async def receive(self) -> Message | None:
        """The next message; None when the other end closed the channel."""
        try:
            head = await self.reader.readexactly(_LENGTH.size)
            (length,) = _LENGTH.unpack(head)
            if length > MAX_MESSAGE:
                return None
            data = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        message: Message = pickle.loads(data)  # our own process at the other end
        return message

    async def drain(self) -> None:
        """Wait until what was sent left the buffer (or the channel broke)."""
        try:
            await self.writer.drain()
        except ConnectionError:
            return

    def close(self) -> None:
        """Close this end."""
        self.writer.close()
