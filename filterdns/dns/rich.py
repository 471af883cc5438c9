"""Answers dnslib writes and reads: a substitute name's CNAME chain (SafeSearch), and an answer
section as presentation lines for `explain`. Neither is on the hot path (a rewrite is kept by the
answer memo and the cache); the hand-written answers are `dns.model`'s. dnslib is imported here
only.
"""

from __future__ import annotations

import dnslib

from filterdns.dns import names, replies, wire
from filterdns.dns.model import QUESTION_PTR, clamped_ttl, record_class
from filterdns.dns.wire import Answer, Query
from filterdns.errors import WireError


def cname_answer(query: Query, target: str, resolved: Answer | None, ttl: int) -> Answer:
    """A substitute name (SafeSearch): "<qname> CNAME <target>", then the target's records.

    `resolved` is the upstream answer for `target` with the same type; the records of its answer
    section owned by `target` or a name of its CNAME chain are copied, names decompressed and
    written again, TTLs kept. When `resolved` is None, not NOERROR or unreadable, the answer is
    the CNAME alone. The CNAME's own TTL is `ttl`. Not a hot path: dnslib does the work.
    """
    ttl = clamped_ttl(ttl)
    target_wire = names.text_to_wire(target)
    flags = wire.QR | wire.RA | (query.flags & wire.RD)
    question = query.qname_wire + wire.TYPE_CLASS.pack(query.qtype, query.qclass)
    prefix = wire.HEADER.pack(query.msg_id, flags, 1, 1, 0, 0) + question
    cname = wire.RR_FIXED.pack(wire.TYPE_CNAME, record_class(query), ttl, len(target_wire))
    alone = prefix + QUESTION_PTR + cname + target_wire
    copied = _chain_records(target_wire, resolved)
    if not copied:
        return replies.analyse(alone)
    record = dnslib.DNSRecord.parse(alone)
    for rr in copied:
        record.add_answer(rr)
    try:
        return replies.analyse(bytes(record.pack()))
    except WireError:  # dnslib wrote a record as no strict parser reads it: never send that
        return replies.analyse(alone)


def _chain_records(target_wire: bytes, resolved: Answer | None) -> list[object]:
    """The answer records of `resolved` owned by the target or a name its CNAMEs lead to."""
    if resolved is None or resolved.rcode != wire.NOERROR:
        return []
    try:
        parsed = dnslib.DNSRecord.parse(resolved.wire)
    except (dnslib.DNSError, ValueError, IndexError, UnicodeError):
        return []
    names = {dnslib.DNSLabel(_wire_labels(target_wire))}
    records = list(parsed.rr)
    chosen: set[int] = set()
    grew = True
    while grew:  # the chain may be listed out of order
        grew = False
        for index, rr in enumerate(records):
            if index not in chosen and rr.rname in names:
                chosen.add(index)
                grew = True
                if rr.rtype == wire.TYPE_CNAME:
                    names.add(rr.rdata.label)
    return [records[index] for index in sorted(chosen)]


def _wire_labels(name_wire: bytes) -> list[bytes]:
    """The labels of an uncompressed wire name."""
    labels = []
    pos = 0
    while name_wire[pos]:
        length = name_wire[pos]
        labels.append(name_wire[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return labels


def answer_records(answer: Answer) -> list[str]:
    """The answer section of `answer` as presentation lines ("a.example. 300 IN CNAME b."), for
    `explain`. Not a hot path: dnslib does the work; an unreadable message gives none."""
    try:
        parsed = dnslib.DNSRecord.parse(answer.wire)
    except (dnslib.DNSError, ValueError, IndexError, UnicodeError):
        return []
    return [rr.toZone().replace("\t", " ") for rr in parsed.rr]
