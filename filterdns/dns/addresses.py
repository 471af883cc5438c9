"""Addresses: a client's address in the one form every comparison uses, and the networks of
DNS rebinding protection.

`canonical_ip` is how the ACL, the client rules and the neighbour table read a source address.
`is_private_address` is checked on the raw RDATA of A and AAAA records while an upstream answer
is walked once (`replies.analyse`), so it works on bytes and builds no `ipaddress` objects.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A datagram's peer as `recvfrom` gives it: (ip, port), or (ip, port, flowinfo, scope_id) for
# IPv6. Both forms in the type: the compiled modules check a tuple's length against it.
Peer = tuple[str, int] | tuple[str, int, int, int]


def canonical_ip(text: str) -> IPAddress:
    """Parse an address the way clients are matched: scope id dropped, IPv4-mapped -> IPv4.

    "fe80::1%eth0" -> fe80::1, "::ffff:10.0.0.5" -> 10.0.0.5; ValueError when not an address.
    """
    address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_private_address(rdata: bytes) -> bool:
    """Whether A or AAAA RDATA is an address no public name should point at (DNS rebinding).

    IPv4: 0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12, 192.168/16. IPv6: ::1,
    fc00::/7, fe80::/10, fec0::/10, and IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96)
    addresses of those IPv4 networks. The unspecified addresses themselves (0.0.0.0 and ::)
    are not: filtering upstreams (family resolvers, ad blockers) answer them for the names they
    block, and that answer is already a block.
    """
    if rdata in _UNSPECIFIED:
        return False
    if len(rdata) == 16:
        if rdata[:12] in _EMBEDDING_V4:  # ::, ::1 and the rest of ::/96, mapped, NAT64
            return _private_v4(rdata[12:])
        first = rdata[0]
        return first & 0xFE == 0xFC or (first == 0xFE and rdata[1] & 0x80 == 0x80)
    return len(rdata) == 4 and _private_v4(rdata)


def _private_v4(a: bytes) -> bool:
    first, second = a[0], a[1]
    return (
        first in (0, 10, 127)
        or (first == 100 and 64 <= second < 128)
        or (first == 169 and second == 254)
        or (first == 172 and 16 <= second < 32)
        or (first == 192 and second == 168)
    )


_UNSPECIFIED = (bytes(4), bytes(16))
_EMBEDDING_V4 = (bytes(12), bytes(10) + b"\xff\xff", b"\x00\x64\xff\x9b" + bytes(8))
