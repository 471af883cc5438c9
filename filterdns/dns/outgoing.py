"""The queries the proxy sends upstream, and the check that a reply answers one.

`make_query` writes a question for an upstream (an OPT record always; DO and CD when the client
set them); `question_of` and `is_reply_to` keep spoofed and stray replies out. The client side
of the wire format (parsing what clients ask, finishing what they are sent) is `dns.wire`.
"""

from __future__ import annotations

import struct

from filterdns.dns.names import skip_name
from filterdns.dns.wire import (
    AD,
    CD,
    EDNS_SIZE,
    HEADER,
    ID_FLAGS,
    QR,
    RD,
    TYPE_CLASS,
    U16,
    opt_record,
)
from filterdns.errors import WireError

_OPT_PLAIN = opt_record(EDNS_SIZE)
_OPT_DO = opt_record(EDNS_SIZE, dnssec_ok=True)


def make_query(
    qname_wire: bytes,
    qtype: int,
    qclass: int,
    msg_id: int,
    *,
    rd: bool = True,
    dnssec_ok: bool = False,
    cd: bool = False,
) -> bytes:
    """A query for upstreams: one question and an OPT record advertising 1232 bytes.

    AD is always set (RFC 6840 5.7: we read the AD bit of the answer, and keep it for the
    clients that ask); DO and CD are set when the client set them (DNSSEC passthrough).
    """
    flags = (RD if rd else 0) | AD | (CD if cd else 0)
    return (
        HEADER.pack(msg_id, flags, 1, 0, 0, 1)
        + qname_wire.lower()
        + TYPE_CLASS.pack(qtype, qclass)
        + (_OPT_DO if dnssec_ok else _OPT_PLAIN)
    )


def question_of(data: bytes) -> bytes:
    """The question section (name + type + class) of a message with one question, lower-cased name.

    Used to check that an upstream reply answers the question that was asked.
    """
    qdcount = U16.unpack_from(data, 4)[0]
    if qdcount != 1:
        raise WireError(f"reply holds {qdcount} questions")
    end = skip_name(data, 12)
    if data[12] & 0xC0 or end + 4 > len(data):
        raise WireError("reply question is malformed")
    return data[12:end].lower() + data[end : end + 4]


def is_reply_to(data: bytes, msg_id: int, question: bytes) -> bool:
    """Whether `data` is a response with `msg_id` to `question` (`question_of` a query): the
    check that keeps spoofed and stray answers out."""
    if len(data) < 12:
        return False
    reply_id, flags = ID_FLAGS.unpack_from(data)
    if reply_id != msg_id or not flags & QR:
        return False
    try:
        return question_of(data) == question
    except (WireError, IndexError, struct.error):
        return False
