"""DNS wire format by hand, for the hot path.

A full dnslib parse and pack costs 75-130 µs per message; the cached and blocked paths must not
pay it. This module reads a query's header, question and OPT record, and patches id, flags, TTLs
and the OPT record into stored bytes; `replies.analyse` walks an answer once to check it and find
its TTL fields. Anything richer (building synthetic records) lives in `model`, with dnslib.

Layout reminders (RFC 1035 4.1): a 12-byte header (id, flags, qdcount, ancount, nscount,
arcount), then the question (name, type, class), then resource records (name, type, class,
ttl, rdlength, rdata). Names are label sequences ending in a zero byte or a 2-byte pointer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from filterdns.dns.names import MAX_NAME_WIRE, name_to_text, skip_name
from filterdns.errors import WireError
from filterdns.memo import Memo

HEADER = struct.Struct("!6H")
TYPE_CLASS = struct.Struct("!HH")
RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
U16 = struct.Struct("!H")
U32 = struct.Struct("!I")
ID_FLAGS = struct.Struct("!HH")

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010
DO = 0x8000  # in the OPT record's TTL field (RFC 3225)

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_AAAA, TYPE_OPT, TYPE_ANY = 1, 2, 5, 6, 28, 41, 255
TYPE_DNAME, TYPE_SVCB, TYPE_HTTPS = 39, 64, 65
CLASS_IN = 1

MIN_UDP = 512
EDNS_SIZE = 1232  # what we advertise to clients and upstreams (DNS flag day 2020)
_DNSSEC_KEYS = (b"", b"\x01", b"\x02", b"\x03")  # key suffix: DO + 2 * CD
TEXT_MEMO = 8192  # names whose text form is kept (popular names are asked again and again)
_TEXTS: Memo[bytes, str] = Memo(TEXT_MEMO)


@dataclass(slots=True, init=False)  # per query: not frozen (6x cheaper); __init__ below
class Query:
    """The parts of a client query the proxy needs, read without a full parse.

    `key` identifies the question for the cache and for coalescing: the lower-cased name in wire
    form plus type and class, plus one byte when the client set DO or CD (`question_key`): an
    answer with DNSSEC records, or one a validating upstream did not check, never reaches a
    client that did not ask for it. `qname_wire` keeps the client's own spelling (0x20 mixed
    case) so the answer echoes it exactly.
    """

    msg_id: int
    flags: int
    qname: str
    qname_wire: bytes
    qtype: int
    qclass: int
    key: bytes
    edns: bool
    udp_size: int
    dnssec_ok: bool
    edns_version: int

    def __init__(  # noqa: PLR0917 - the fields' order, as the dataclass's would take them
        self,
        msg_id: int,
        flags: int,
        qname: str,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        key: bytes,
        edns: bool = False,
        udp_size: int = MIN_UDP,
        dnssec_ok: bool = False,
        edns_version: int = 0,
    ) -> None:
        self.msg_id = msg_id
        self.flags = flags
        self.qname = qname
        self.qname_wire = qname_wire
        self.qtype = qtype
        self.qclass = qclass
        self.key = key
        self.edns = edns
        self.udp_size = udp_size
        self.dnssec_ok = dnssec_ok
        self.edns_version = edns_version

    @property
    def rd(self) -> bool:
        """Whether the client asked for recursion."""
        return bool(self.flags & RD)


@dataclass(slots=True, init=False)  # per query: not frozen (6x cheaper); __init__ below
class Answer:
    """A complete DNS message without an OPT record, and where its TTLs are.

    `ttls[i]` is the TTL stored at byte offset `ttl_offsets[i]` of `wire`. `cache_ttl` is how long
    the message may be cached: the smallest TTL of a positive answer, the negative TTL of RFC 2308
    (min of the SOA's TTL and MINIMUM field), or None when it must not be cached.

    What the policy inspects, found by the one walk of `replies.analyse` (so a cache hit costs
    nothing more): `targets`, the names the answer section leads to (CNAME and DNAME targets,
    SVCB/HTTPS target names), in order; `private`, whether it holds an A/AAAA address of a
    private, loopback, link-local, shared (CGNAT) or unique-local network (DNS rebinding).
    """

    wire: bytes
    ttl_offsets: tuple[int, ...]
    ttls: tuple[int, ...]
    rcode: int
    cache_ttl: int | None
    targets: tuple[str, ...]
    private: bool

    def __init__(  # noqa: PLR0917 - the fields' order, as the dataclass's would take them
        self,
        wire: bytes,
        ttl_offsets: tuple[int, ...] = (),
        ttls: tuple[int, ...] = (),
        rcode: int = NOERROR,
        cache_ttl: int | None = None,
        targets: tuple[str, ...] = (),
        private: bool = False,
    ) -> None:
        self.wire = wire
        self.ttl_offsets = ttl_offsets
        self.ttls = ttls
        self.rcode = rcode
        self.cache_ttl = cache_ttl
        self.targets = targets
        self.private = private

    def with_ttls(self, ttls: tuple[int, ...]) -> Answer:
        """A copy whose TTL fields hold `ttls` (same length as `ttl_offsets`)."""
        buf = bytearray(self.wire)
        for offset, ttl in zip(self.ttl_offsets, ttls, strict=True):
            U32.pack_into(buf, offset, ttl)
        return Answer(
            bytes(buf), self.ttl_offsets, ttls, self.rcode, self.cache_ttl, self.targets,
            self.private,
        )  # fmt: skip


def _question_name(data: bytes, pos: int, msg_id: int) -> int:
    """End offset of the uncompressed name at `pos` in a query; WireError when malformed."""
    start = pos
    end = len(data)
    while True:
        if pos >= end:
            raise WireError("question name runs past the end of the packet", msg_id)
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length & 0xC0:
            raise WireError("compressed or extended label in the question", msg_id)
        pos += 1 + length
        if pos - start > MAX_NAME_WIRE:
            raise WireError("question name is longer than 255 bytes", msg_id)
    if pos - start > MAX_NAME_WIRE:
        raise WireError("question name is longer than 255 bytes", msg_id)
    return pos


def parse_query(data: bytes) -> Query:
    """Read a client query: header, the one question and the OPT record.

    Raises WireError: with `msg_id` None when the packet should be dropped (shorter than a
    header, or a response rather than a query), with the id when FORMERR is the right answer.
    """
    if len(data) < 12:
        raise WireError("packet shorter than a DNS header")
    data = bytes(data)
    # The header's fields byte by byte: compiled, indexing bytes is C arithmetic, where each
    # struct call is a Python call building a tuple.
    msg_id, flags = data[0] << 8 | data[1], data[2] << 8 | data[3]
    if flags & QR:
        raise WireError("a response was sent to the query port")
    if data[4] or data[5] != 1:
        qdcount = data[4] << 8 | data[5]
        raise WireError(f"a query must hold exactly one question, not {qdcount}", msg_id)
    ancount, nscount = data[6] << 8 | data[7], data[8] << 8 | data[9]
    arcount = data[10] << 8 | data[11]
    qend = _question_name(data, 12, msg_id)
    if qend + 4 > len(data):
        raise WireError("question type and class are missing", msg_id)
    qtype, qclass = data[qend] << 8 | data[qend + 1], data[qend + 2] << 8 | data[qend + 3]
    qname_wire = data[12:qend]
    lowered = qname_wire.lower()
    qname = _TEXTS.get(lowered)
    if qname is None:
        qname = _TEXTS.remember(lowered, name_to_text(qname_wire))
    pos = qend + 4
    if arcount == 0 and ancount == 0 and nscount == 0:
        edns, udp_size, dnssec_ok, version = False, MIN_UDP, False, 0
    elif (  # the usual EDNS query: the question, then only the OPT record, owner the root
        arcount == 1
        and ancount == 0
        and nscount == 0
        and len(data) >= pos + 11
        and data[pos] == 0
        and data[pos + 1] == 0
        and data[pos + 2] == TYPE_OPT
    ):
        rdlen = data[pos + 9] << 8 | data[pos + 10]
        if pos + 11 + rdlen > len(data):
            raise WireError("record data runs past the end of the packet", msg_id)
        edns, udp_size = True, max(MIN_UDP, data[pos + 3] << 8 | data[pos + 4])
        version, dnssec_ok = data[pos + 6], bool(data[pos + 7] & 0x80)
    else:
        edns, udp_size, dnssec_ok, version = _read_opt(
            data, pos, ancount + nscount, arcount, msg_id
        )
    key = lowered + data[qend : qend + 4]
    if dnssec_ok or flags & CD:
        key += _DNSSEC_KEYS[dnssec_ok + (flags & CD) // 8]
    return Query(
        msg_id,
        flags,
        qname,
        qname_wire,
        qtype,
        qclass,
        key,
        edns,
        udp_size,
        dnssec_ok,
        version,
    )


def _read_opt(
    data: bytes, pos: int, skip: int, arcount: int, msg_id: int
) -> tuple[bool, int, bool, int]:
    """(edns, udp size, DO bit, version) from the additional section; FORMERR on two OPTs."""
    found = False
    size, dnssec_ok, version = MIN_UDP, False, 0
    try:
        for index in range(skip + arcount):
            name_at = pos
            pos = skip_name(data, pos)
            if pos + 10 > len(data):
                raise WireError("resource record runs past the end of the packet", msg_id)
            rtype, rclass, ttl, rdlen = RR_FIXED.unpack_from(data, pos)
            pos += 10 + rdlen
            if pos > len(data):
                raise WireError("record data runs past the end of the packet", msg_id)
            if index >= skip and rtype == TYPE_OPT:
                if found:
                    raise WireError("more than one OPT record", msg_id)
                if data[name_at] != 0:
                    raise WireError("OPT record owner is not the root", msg_id)
                found = True
                size = max(MIN_UDP, rclass)
                version = (ttl >> 16) & 0xFF
                dnssec_ok = bool(ttl & 0x8000)
    except WireError as exc:
        raise WireError(str(exc), msg_id) from None
    return found, size, dnssec_ok, version


def question_key(
    qname_wire: bytes, qtype: int, qclass: int, *, dnssec_ok: bool = False, flags: int = 0
) -> bytes:
    """The cache and coalescing key of a question (see `Query.key`), for a name asked on a
    client's behalf: its DO bit and the CD bit of its `flags` are kept apart as the client's
    own question would be."""
    key = qname_wire.lower() + TYPE_CLASS.pack(qtype, qclass)
    if dnssec_ok or flags & CD:
        key += _DNSSEC_KEYS[dnssec_ok + (flags & CD) // 8]
    return key


def opt_record(
    udp_size: int, ext_rcode: int = 0, options: bytes = b"", *, dnssec_ok: bool = False
) -> bytes:
    """An OPT pseudo-record (RFC 6891) with the given payload size, extended rcode and options,
    and the DO bit (RFC 3225) when `dnssec_ok`."""
    flags = (ext_rcode & 0xFF) << 24 | (DO if dnssec_ok else 0)
    return b"\x00" + RR_FIXED.pack(TYPE_OPT, udp_size, flags, len(options)) + options


def edns_option(code: int, payload: bytes) -> bytes:
    """One EDNS option (code, length, payload), e.g. an Extended DNS Error (code 15)."""
    return U16.pack(code) + U16.pack(len(payload)) + payload


def finish(
    answer: Answer,
    query: Query,
    *,
    limit: int,
    ttl_cap: int | None = None,
    ext_rcode: int = 0,
    options: bytes = b"",
) -> bytes:
    """The bytes to send to the client for `answer`.

    Copies the client's id, RD and CD bits and its spelling of the name; sets QR and RA; keeps
    the AD bit (set only by an upstream trusted to validate, see `replies.analyse`) for a
    client that set DO or AD (RFC 6840 5.8); caps TTLs at `ttl_cap`; appends an OPT record when
    the client sent EDNS, with its DO bit (RFC 3225) and `options` (e.g. an Extended DNS
    Error); and when the result exceeds `limit` bytes, sends the header and question alone with
    TC set so the client retries over TCP.
    """
    data = answer.wire
    qflags = query.flags
    # A forwarder is not authoritative: clear AA; echo the client's RD and CD; opcode QUERY.
    # AD only for a client that asked (RFC 6840 5.8), tested only when set: it rarely is.
    flags = (data[2] << 8 | data[3]) & _KEEP | QR | RA | (qflags & (RD | CD))
    if flags & AD and not (query.dnssec_ok or qflags & AD):
        flags &= _DROP_AD
    opt = _opt(ext_rcode, options, query.dnssec_ok) if query.edns else b""
    qname_wire = query.qname_wire
    if (
        (ttl_cap is not None and answer.ttls and max(answer.ttls) > ttl_cap)
        or len(data) + len(opt) > limit
        or not data.startswith(qname_wire, 12)
    ):
        return _finish_patched(answer, query, flags, opt, limit=limit, ttl_cap=ttl_cap)
    # The usual case, written in one go: the answer's bytes are the client's but for the id,
    # the flags and the OPT record.
    if opt:
        arcount = (data[10] << 8 | data[11]) + 1
        return b"".join((ID_FLAGS.pack(query.msg_id, flags), data[4:10], U16.pack(arcount),
                         data[12:], opt))  # fmt: skip
    return ID_FLAGS.pack(query.msg_id, flags) + data[4:]


def _finish_patched(
    answer: Answer, query: Query, flags: int, opt: bytes, *, limit: int, ttl_cap: int | None
) -> bytes:
    """`finish` when TTLs must be capped, the client spelled the name its own way, or the
    answer does not fit in `limit` bytes."""
    buf = bytearray(answer.wire)
    U16.pack_into(buf, 0, query.msg_id)
    U16.pack_into(buf, 2, flags)
    qname_wire = query.qname_wire
    qlen = len(qname_wire)
    stored = buf[12 : 12 + qlen]
    if stored != qname_wire and buf[4:6] == b"\x00\x01" and stored.lower() == query.key[:qlen]:
        buf[12 : 12 + qlen] = qname_wire
    if ttl_cap is not None:
        for offset, ttl in zip(answer.ttl_offsets, answer.ttls, strict=True):
            if ttl > ttl_cap:
                U32.pack_into(buf, offset, ttl_cap)
    if len(buf) + len(opt) > limit:
        qdcount = U16.unpack_from(buf, 4)[0]
        end = 12 + (len(query.qname_wire) + 4 if qdcount == 1 else 0)
        del buf[end:]
        HEADER.pack_into(buf, 0, query.msg_id, flags | TC, 1 if qdcount == 1 else 0, 0, 0, 0)
    if opt:
        buf += opt
        U16.pack_into(buf, 10, U16.unpack_from(buf, 10)[0] + 1)
    return bytes(buf)


def _opt(ext_rcode: int, options: bytes, dnssec_ok: bool) -> bytes:
    """The OPT record `finish` appends: the plain ones shared, those with options (an EDE
    naming a category) kept by their options."""
    if ext_rcode:
        return opt_record(EDNS_SIZE, ext_rcode, options, dnssec_ok=dnssec_ok)
    kept = _OPTS_DO if dnssec_ok else _OPTS
    found = kept.get(options)
    if found is None:
        found = kept.remember(options, opt_record(EDNS_SIZE, 0, options, dnssec_ok=dnssec_ok))
    return found


def header_only(msg_id: int, flags: int, rcode: int, question: bytes = b"") -> bytes:
    """A reply with no records: FORMERR, SERVFAIL, REFUSED, NOTIMP (question optional)."""
    flags = (flags & (RD | CD | 0x7800)) | QR | RA | (rcode & 0xF)
    return HEADER.pack(msg_id, flags, 1 if question else 0, 0, 0, 0) + question


_OPT_PLAIN = opt_record(EDNS_SIZE)
_OPT_DO = opt_record(EDNS_SIZE, dnssec_ok=True)
OPT_MEMO = 256  # OPT records with options, by their options: one EDE per category or rule
_OPTS: Memo[bytes, bytes] = Memo(OPT_MEMO)
_OPTS_DO: Memo[bytes, bytes] = Memo(OPT_MEMO)
_KEEP = ~(AA | RD | CD | 0x7800)
_DROP_AD = ~AD
