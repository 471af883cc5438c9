"""Who may hold the TCP client connections: `server.max_tcp_connections` in all and
`server.max_tcp_connections_per_client` from one address.

A connection over its address's cap is refused (the server closes it at once) and the address
is named in a warning once a minute, so one address can never lock the others out. When every
connection is taken, a newcomer whose address holds fewer connections than the address holding
the most takes the place of one of that address's connections, an idle one first (RFC 7766
section 6.2.3 lets a server close idle connections under pressure): however many addresses hoard
connections, a client with none still gets in, and nobody is cut below a newcomer's share. Only
when every address holds about as many as the newcomer is it refused.

Pure bookkeeping: the server opens and closes the sockets; a connection is any hashable handle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from filterdns.memo import Memo

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Hashable)

WARN_EVERY = 60.0  # seconds between two warnings about the same address
MAX_WARNED = 4096  # addresses remembered for that; forgotten all at once beyond


class TcpSlots(Generic[C]):
    """The open TCP client connections by address, with the caps and the counts of refusals."""

    def __init__(
        self, total: int, per_client: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.per_client = per_client
        self._clock = clock
        self._by_client: dict[str, dict[C, None]] = {}  # oldest connection first
        self._open = 0
        self._warned: Memo[str, float] = Memo(MAX_WARNED)
        self.refused_per_client = 0
        self.refused_full = 0
        self.evicted = 0

    def __len__(self) -> int:
        return self._open

    def held_by(self, ip: str) -> int:
        """How many connections `ip` holds."""
        return len(self._by_client.get(ip, ()))

    def admit(self, ip: str, conn: C, busy: Callable[[C], bool]) -> tuple[bool, C | None]:
        """Whether `conn` from `ip` may stay open, and the connection to close for its room.

        `busy(c)` says whether `c` has queries in flight (idle ones are closed first).
        """
        mine = self.held_by(ip)
        if mine >= self.per_client:
            self.refused_per_client += 1
            self._warn(
                ip,
                "client %s holds %d TCP connections, the most server.max_tcp_connections_per_client"
                " allows: its new ones are closed at once",
                ip,
                mine,
            )
            return False, None
        room: C | None = None
        if self._open >= self.total:
            room = self._make_room(mine, busy)
            if room is None:
                self.refused_full += 1
                self._warn(
                    "",
                    "all %d TCP connections (server.max_tcp_connections) are taken by clients"
                    " holding about as many each: new ones are closed at once",
                    self.total,
                )
                return False, None
        self._by_client.setdefault(ip, {})[conn] = None
        self._open += 1
        return True, room

    def release(self, ip: str, conn: C) -> None:
        """`conn` from `ip` is closed (nothing happens if it had made room for another)."""
        held = self._by_client.get(ip)
        if held is None or conn not in held:
            return
        del held[conn]
        self._open -= 1
        if not held:
            del self._by_client[ip]

    def _make_room(self, mine: int, busy: Callable[[C], bool]) -> C | None:
        """Take a connection from the address holding the most, when that is more than one
        more than the newcomer would hold; its idlest connection, else its oldest."""
        top = max(self._by_client, key=lambda ip: len(self._by_client[ip]))
        held = self._by_client[top]
        if len(held) <= mine + 1:
            return None
        conn = next((c for c in held if not busy(c)), next(iter(held)))
        self.release(top, conn)
        self.evicted += 1
        return conn

    def _warn(self, key: str, message: str, *args: object) -> None:
        now = self._clock()
        last = self._warned.get(key)
        if last is not None and now - last < WARN_EVERY:
            return
        self._warned.remember(key, now)
        log.warning(message, *args)
