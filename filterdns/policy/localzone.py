"""Step 3 of the decision order, first half: the names of `local_records:`, answered as given.

`LocalZone` holds every local name (the configured ones and the reverse names of their
addresses) and their answers, built once when the configuration is loaded: complete messages,
id 0 and the question in lower case, which the server patches per query (`wire.finish` copies
the client's id and spelling), as it does for a cache hit. So a local answer costs about what
a cache hit costs.

What a local name answers:
- addresses: A and AAAA by family; another type (or a family with no address) gets NODATA;
- a CNAME: the CNAME, then the target's records of the asked type when the target is itself a
  local name (following its CNAMEs); a target elsewhere is the client's next question, which
  goes through the filter like any other;
- a reverse name (in-addr.arpa, ip6.arpa) of a local address: PTR to every name holding it.
A local name never gets NXDOMAIN: every other type is NODATA.
"""

from __future__ import annotations

from collections.abc import Sequence

from filterdns.config.localrecords import LocalRecord
from filterdns.dns import names, outgoing, replies, wire
from filterdns.dns.model import nodata
from filterdns.dns.wire import Answer
from filterdns.memo import Memo

TYPE_PTR = 12
# Answered at load for every local name; other types are built on first use and remembered.
PREBUILT = (wire.TYPE_A, wire.TYPE_AAAA, wire.TYPE_CNAME, TYPE_PTR, wire.TYPE_HTTPS)
MAX_OTHER = 4096  # answers to the other types, remembered (a memo: cleared whole when full)

Record = tuple[str, int, int, bytes]  # owner, type, TTL, RDATA


class LocalZone:
    """The local names and their answers (see the module docstring)."""

    def __init__(self, records: Sequence[LocalRecord]) -> None:
        self.records = {record.name: record for record in records}
        self.pointers: dict[str, list[LocalRecord]] = {}  # reverse name -> records holding it
        for record in records:
            for address in record.addresses:
                self.pointers.setdefault(address.reverse_pointer, []).append(record)
        self.names = frozenset((*self.records, *self.pointers))
        self._ready: dict[tuple[str, int], Answer] = {
            (name, qtype): self._build(name, qtype) for name in self.names for qtype in PREBUILT
        }
        self._other: Memo[tuple[str, int], Answer] = Memo(MAX_OTHER)

    def __bool__(self) -> bool:
        return bool(self.names)

    def answer(self, name: str, qtype: int) -> Answer | None:
        """The answer to (`name`, `qtype`) when `name` is local, else None."""
        ready = self._ready.get((name, qtype))
        if ready is not None or name not in self.names:
            return ready
        key = (name, qtype)
        return self._other.get(key) or self._other.remember(key, self._build(name, qtype))

    def describe(self, name: str) -> str:
        """What `name` answers, for `explain` and the log: "A 10.6.0.5", "CNAME web.lan"."""
        record = self.records.get(name)
        if record is None:
            targets = ", ".join(r.name for r in self.pointers.get(name, ()))
            return f"PTR {targets}"
        if record.cname is not None:
            return f"CNAME {record.cname}"
        return ", ".join(f"{'A' if a.version == 4 else 'AAAA'} {a}" for a in record.addresses)

    def where(self, name: str) -> str:
        """Where the file gives `name` (its own entry, or the entries of its addresses)."""
        found = self.records.get(name)
        held = [found] if found is not None else self.pointers.get(name, [])
        return "; ".join(r.path + (f", line {r.line}" if r.line is not None else "") for r in held)

    def _build(self, name: str, qtype: int) -> Answer:
        """The whole message for (`name`, `qtype`), id 0."""
        records = self._records(name, qtype)
        qname_wire = names.text_to_wire(name)
        if not records:
            query = wire.parse_query(outgoing.make_query(qname_wire, qtype, wire.CLASS_IN, 0))
            return nodata(query, self._ttl(name))
        header = wire.HEADER.pack(0, wire.QR | wire.RA, 1, len(records), 0, 0)
        body = [qname_wire + wire.TYPE_CLASS.pack(qtype, wire.CLASS_IN)]
        for owner, rtype, ttl, rdata in records:
            fixed = wire.RR_FIXED.pack(rtype, wire.CLASS_IN, ttl, len(rdata))
            # The asked name's own records point at the question, so they echo its spelling.
            owner_wire = b"\xc0\x0c" if owner == name else names.text_to_wire(owner)
            body.append(owner_wire + fixed + rdata)
        return replies.analyse(header + b"".join(body))

    def _records(self, name: str, qtype: int) -> list[Record]:
        """The answer records of (`name`, `qtype`), CNAMEs of local names followed."""
        record = self.records.get(name)
        if record is None:
            if qtype != TYPE_PTR:
                return []
            held = self.pointers.get(name, [])
            return [(name, TYPE_PTR, r.ttl, names.text_to_wire(r.name)) for r in held]
        if record.cname is not None:
            cname = (name, wire.TYPE_CNAME, record.ttl, names.text_to_wire(record.cname))
            if qtype == wire.TYPE_CNAME or record.cname not in self.records:
                return [cname]
            return [cname, *self._records(record.cname, qtype)]  # no loops: the reader checks
        version = {wire.TYPE_A: 4, wire.TYPE_AAAA: 6}.get(qtype)
        return [
            (name, qtype, record.ttl, address.packed)
            for address in record.addresses
            if address.version == version
        ]

    def _ttl(self, name: str) -> int:
        """The TTL of a NODATA answer: the name's own, the smallest of its records' for PTR."""
        record = self.records.get(name)
        if record is not None:
            return record.ttl
        return min(r.ttl for r in self.pointers[name])
