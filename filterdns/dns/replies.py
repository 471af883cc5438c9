"""Replies checked, normalised and walked once: the only way bytes become an `Answer`.

`analyse` reads every upstream reply (and the synthetic answers `model` builds). What a client
could not read, or what does not say what its header says, raises WireError, so it is never
cached or sent (the upstream link counts it as a failure of that server):

- section counts that overrun the message, bytes after the last record, more than one
  question, an opcode other than QUERY;
- an OPT record in the answer or authority section, a second OPT, an OPT not owned by the root
  (RFC 6891 6.1.1), an extended RCODE (we ask with EDNS version 0 and no cookie); query-only
  types (AXFR, IXFR, MAILB, MAILA, ANY) anywhere, TKEY or TSIG outside the additional section;
- names and record data a strict parser refuses (`records`).

What is legal but not ours to pass on is normalised: the OPT record is removed, with whatever
additional records follow it (TSIG comes last; additional records are optional), since the
server appends its own OPT for each client; the AD bit is cleared unless the reply comes from an
upstream trusted to validate (`trust_ad`); a TTL with the top bit set reads as 0 (RFC 2181 8).
The counts of what is kept always match the records kept.

The same walk notes what the cache and the policy need (TTL offsets, the cache lifetime, the
names the answer leads to, private addresses), so a cache hit costs nothing more.
"""

from __future__ import annotations

from filterdns.dns import names, records, wire
from filterdns.dns.addresses import is_private_address
from filterdns.dns.wire import AD, RR_FIXED, TC, TYPE_OPT, U16, U32, Answer
from filterdns.errors import WireError
from filterdns.memo import Memo

_LEADING = frozenset({wire.TYPE_CNAME, wire.TYPE_DNAME, wire.TYPE_SVCB, wire.TYPE_HTTPS})
_ADDRESS = frozenset({wire.TYPE_A, wire.TYPE_AAAA})
_TKEY, _TSIG = 249, 250
_ADDITIONAL_ONLY = frozenset({TYPE_OPT, _TKEY, _TSIG})  # the additional section is cut there
_NEVER = frozenset(range(251, 256))  # IXFR, AXFR, MAILB, MAILA, ANY: query types, not records
_IPV4HINT, _IPV6HINT = 4, 6  # SvcParamKeys (RFC 9460 14.3.2)
SHAPE_MEMO = 4096
_SHAPES: Memo[tuple[int, ...], tuple[int, ...]] = Memo(SHAPE_MEMO)


class _Walk:
    """One pass over the records of a reply: checks them and notes what the kept ones hold."""

    __slots__ = (
        "ancount", "answer_ttls", "cut", "data", "known", "offsets", "opt", "private",
        "sections", "soa_negative", "targets", "ttls",
    )  # fmt: skip

    def __init__(self, data: bytes, ancount: int, sections: int) -> None:
        self.data = data
        self.ancount = ancount
        self.sections = sections  # records in the answer and authority sections
        self.known: records.Known = {}
        self.cut: int | None = None  # where the additional section is cut (at the OPT record)
        self.opt = False
        self.offsets: list[int] = []
        self.ttls: list[int] = []
        self.answer_ttls: list[int] = []
        self.targets: list[str] = []
        self.private = False
        self.soa_negative: int | None = None

    def question(self, qdcount: int) -> int:
        """Offset after the question section (none or one question)."""
        data = self.data
        if qdcount > 1:
            raise WireError(f"reply holds {qdcount} questions")
        if not qdcount:
            return 12
        pos = records.name_end(data, 12, len(data), self.known) + 4
        if pos > len(data):
            raise WireError("question runs past the end of the reply")
        return pos

    def records(self, pos: int, count: int) -> int:
        """Check `count` records from `pos`; the offset after the last."""
        size = len(self.data)
        known = self.known
        for index in range(count):
            data = self.data
            start = pos
            pos = records.name_end(data, pos, size, known)
            if pos + 10 > size:
                raise WireError("record runs past the end of the reply")
            rtype, rclass, ttl, rdlen = RR_FIXED.unpack_from(data, pos)
            rdata_at = pos + 10
            pos = rdata_at + rdlen
            if pos > size:
                raise WireError("record data runs past the end of the reply")
            if rtype in _ADDITIONAL_ONLY or rtype in _NEVER:
                self._special(index, start, rtype, ttl)
                continue
            records.check_rdata(data, rtype, rclass, rdata_at, pos, known=known)
            if self.cut is None:
                self._note(index, rtype, ttl, rdata_at, pos)
        return pos

    def _special(self, index: int, start: int, rtype: int, ttl: int) -> None:
        """Check an OPT, TKEY or TSIG record (refuse a query-only type) and cut there."""
        if rtype in _NEVER:
            raise WireError(f"a record of the query-only type {rtype}")
        if index < self.sections:
            raise WireError(f"a record of type {rtype} outside the additional section")
        if self.cut is None:
            self.cut = start
        if rtype != TYPE_OPT:
            return
        if self.opt:
            raise WireError("more than one OPT record")
        if self.data[start] != 0:
            raise WireError("OPT record owner is not the root")
        if ttl >> 24:
            raise WireError(f"extended RCODE {(ttl >> 24) << 4 | self.data[3] & 0xF} in the OPT")
        self.opt = True

    def _note(self, index: int, rtype: int, ttl: int, rdata_at: int, end: int) -> None:
        """Note a kept record's TTL, and what an answer record leads to."""
        ttl_at = rdata_at - 6
        if ttl & 0x80000000:  # RFC 2181 8: treat a TTL with the top bit set as zero
            ttl = 0
            self.data = self.data[:ttl_at] + U32.pack(0) + self.data[ttl_at + 4 :]
        self.offsets.append(ttl_at)
        self.ttls.append(ttl)
        if index < self.ancount:
            self.answer_ttls.append(ttl)
            self._answer(rtype, rdata_at, end)
        elif index < self.sections and rtype == wire.TYPE_SOA:
            minimum = U32.unpack_from(self.data, end - 4)[0]
            self.soa_negative = min(ttl, minimum)

    def _answer(self, rtype: int, rdata_at: int, end: int) -> None:
        """Note the names and addresses an answer record leads to."""
        data = self.data
        if rtype in _ADDRESS:
            self.private = self.private or is_private_address(data[rdata_at:end])
        elif rtype in _LEADING:
            target = _target(data, rdata_at, end - rdata_at, rtype)
            if target is not None:
                self.targets.append(target)
            if rtype in (wire.TYPE_SVCB, wire.TYPE_HTTPS):
                self.private = self.private or _private_hints(data, rdata_at, end)


def analyse(data: bytes, *, trust_ad: bool = False) -> Answer:
    """Check a whole reply, drop its OPT record, find its TTLs and how long it may be cached.

    Raises WireError on a message a strict parser would refuse or whose sections are not what
    its header says (see the module docstring). Without `trust_ad` the AD bit is cleared.
    """
    if len(data) < 12:
        raise WireError("reply shorter than a DNS header")
    _msg_id, flags, qdcount, ancount, nscount, arcount = wire.HEADER.unpack_from(data)
    if flags & 0x7800:
        raise WireError("reply opcode is not QUERY")
    walk = _Walk(data, ancount, ancount + nscount)
    end = walk.records(walk.question(qdcount), ancount + nscount + arcount)
    if end != len(data):
        raise WireError(f"{len(data) - end} bytes after the last record of the reply")
    data = walk.data
    if walk.cut is not None:
        kept = len(walk.ttls) - walk.sections
        data = data[:10] + U16.pack(kept) + data[12 : walk.cut]
    if flags & AD and not trust_ad:
        data = data[:2] + U16.pack(flags & ~AD) + data[4:]
    cache_ttl = _cache_ttl(flags, ancount, walk.answer_ttls, walk.soa_negative)
    return Answer(
        bytes(data), _shared(tuple(walk.offsets)), _shared(tuple(walk.ttls)), flags & 0xF,
        cache_ttl, tuple(walk.targets), walk.private,
    )  # fmt: skip


def _private_hints(data: bytes, rdata_at: int, end: int) -> bool:
    """Whether an SVCB/HTTPS record's ipv4hint or ipv6hint holds a private address: clients
    may connect to a hint before any A/AAAA answer, so hints are addresses too."""
    pos = names.skip_name(data, rdata_at + 2)
    while pos + 4 <= end:
        key, length = wire.TYPE_CLASS.unpack_from(data, pos)
        pos += 4
        size = 4 if key == _IPV4HINT else 16 if key == _IPV6HINT else 0
        if size:
            for at in range(pos, min(pos + length, end) - size + 1, size):
                if is_private_address(data[at : at + size]):
                    return True
        pos += length
    return False


def _target(data: bytes, rdata_at: int, rdlen: int, rtype: int) -> str | None:
    """The name a CNAME, DNAME, SVCB or HTTPS record leads to (None: the owner itself, "." in
    SVCB). SVCB's TargetName follows its 2-byte SvcPriority (RFC 9460 2.2)."""
    skip = 2 if rtype in (wire.TYPE_SVCB, wire.TYPE_HTTPS) else 0
    if rdlen <= skip:
        raise WireError("record data too short for its name")
    name = names.read_name(data, rdata_at + skip)
    return None if name == "." else name


def _shared(values: tuple[int, ...]) -> tuple[int, ...]:
    """One tuple object for equal TTL or offset layouts: most cached answers share a few."""
    found = _SHAPES.get(values)
    return _SHAPES.remember(values, values) if found is None else found


def _cache_ttl(
    flags: int, ancount: int, answer_ttls: list[int], soa_negative: int | None
) -> int | None:
    """How long a reply may be cached (RFC 2308 for negative answers), or None."""
    rcode = flags & 0xF
    if flags & TC:
        return None
    if rcode == wire.NOERROR and ancount and answer_ttls:
        return min(answer_ttls)
    if rcode in (wire.NOERROR, wire.NXDOMAIN) and soa_negative is not None:
        return soa_negative
    return None
