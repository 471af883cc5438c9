"""Names and record data checked as a strict parser reads them, so nothing unreadable goes out.

An upstream reply reaches clients byte for byte (and stays in the cache), so every client's
parser must be able to read it. The rules are those of dnspython, the strictest common reader:

- a name: labels of at most 63 bytes, at most 255 bytes in all; compression pointers point
  backwards, never into the bytes of the part of the name that jumps, at most 16 in a chain,
  and only where the record type allows compression (RFC 3597 section 4: owner names, the
  RFC 1035 types, SRV, NAPTR, PX; never in RRSIG, NSEC, DNAME, KX or SVCB data, RFC 4034 6.2,
  RFC 6672 2.5, RFC 9460 2.2);
- record data: the types that hold names (their pointers refer to the message), the address
  types, TXT, and the DNSSEC types a validating client reads are checked field by field. Other
  types are carried as opaque data (RFC 3597): their length is all a forwarder needs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from filterdns.errors import WireError

MAX_NAME = 255
MAX_HOPS = 16  # pointers in one name (dnspython's limit; loops are impossible anyway)
CLASS_IN, CLASS_CH = 1, 3
_U16 = struct.Struct("!H")
_KEY_LENGTH = struct.Struct("!HH")

# Where a name was read before: offset -> (wire length of the name, end of its first part,
# pointers followed). Reading a name that points there then costs one look-up.
Known = dict[int, tuple[int, int, int]]

# The shape of a record's data, field by field: an int is that many bytes; "c" a name that may
# be compressed, "u" one that may not; "s" a character-string, "z" an optional one, "S" one or
# more to the end; "r" the rest (any bytes), "R" at least one byte; "b" an NSEC type bitmap to
# the end; "h" a hash of 1-255 bytes after its length; "t" a CAA tag; "d" a digest or
# fingerprint whose length its type fixes (_DIGESTS); "g" an IPSECKEY/AMTRELAY gateway; "p" SVCB
# parameters; "w" a WKS bitmap; "A", "H", "L", "P": the data of APL, HIP, LOC, GPOS.
Shape = tuple[int | str, ...]
SHAPES: dict[int, Shape] = {
    2: ("c",), 3: ("c",), 4: ("c",), 5: ("c",), 7: ("c",), 8: ("c",), 9: ("c",),  # NS ... MR
    12: ("c",),  # PTR
    6: ("c", "c", 20),  # SOA
    13: ("s", "s"),  # HINFO
    14: ("c", "c"), 17: ("c", "c"),  # MINFO, RP
    15: (2, "c"), 18: (2, "c"), 21: (2, "c"),  # MX, AFSDB, RT
    16: ("S",), 99: ("S",), 56: ("S",), 258: ("S",), 261: ("S",), 262: ("S",),  # TXT-like
    19: ("s",), 20: ("s", "z"),  # X25, ISDN
    24: (18, "c", "r"),  # SIG
    25: (4, "r"), 48: (4, "r"), 60: (4, "r"),  # KEY, DNSKEY, CDNSKEY
    27: ("P",), 29: ("L",), 55: ("H",),  # GPOS, LOC, HIP
    37: (5, "r"),  # CERT
    39: ("u",),  # DNAME
    43: (4, "d"), 59: (4, "d"), 32769: (4, "d"),  # DS, CDS, DLV
    44: (2, "d"),  # SSHFP
    46: (18, "u", "r"),  # RRSIG
    47: ("u", "b"),  # NSEC
    50: (4, "s", "h", "b"),  # NSEC3
    51: (4, "s"),  # NSEC3PARAM
    52: (3, "d"), 53: (3, "d"),  # TLSA, SMIMEA
    62: (6, "b"),  # CSYNC
    63: (6, "d"),  # ZONEMD
    66: (5, "u"),  # DSYNC
    104: (10,), 105: (6,), 106: (10,), 107: (2, "u"), 108: (6,), 109: (8,),  # NID ... EUI64
    256: (4, "R"),  # URI
    257: (1, "t", "r"),  # CAA
    260: (2, "g"),  # AMTRELAY
}  # fmt: skip
IN_SHAPES: dict[int, Shape] = {
    1: (4,), 28: (16,),  # A, AAAA
    11: (5, "w"),  # WKS
    23: ("u",),  # NSAP-PTR
    26: (2, "c", "c"),  # PX
    33: (6, "c"),  # SRV
    35: (4, "s", "s", "s", "c"),  # NAPTR
    36: (2, "u"),  # KX
    42: ("A",),  # APL
    45: (3, "g", "r"),  # IPSECKEY
    64: (2, "u", "p"), 65: (2, "u", "p"),  # SVCB, HTTPS
}  # fmt: skip
CH_SHAPES: dict[int, Shape] = {1: ("u", 2)}  # Chaosnet A: a domain and a 16-bit address
# type -> (offset of the byte naming the digest type, its lengths, whether 0 is reserved):
# DS, DLV (RFC 3658, 4509, 5933, 6605), CDS (0: delete, RFC 8078), SSHFP (RFC 4255, 6594),
# TLSA, SMIMEA (RFC 6698), ZONEMD (RFC 8976)
_DS = {1: 20, 2: 32, 3: 32, 4: 48}
_DIGESTS: dict[int, tuple[int, dict[int, int], bool]] = {
    43: (3, _DS, True), 32769: (3, _DS, True), 59: (3, {0: 1, **_DS}, False),
    44: (1, {1: 20, 2: 32}, False), 52: (2, {1: 32, 2: 64}, False),
    53: (2, {1: 32, 2: 64}, False), 63: (5, {1: 48, 2: 64}, True),
}  # fmt: skip
_LOC_CENTRE = 0x80000000
_MAS_PER_DEGREE = 3600000  # LOC coordinates are in thousandths of a second of arc


def name_end(data: bytes, pos: int, end: int, known: Known, *, compressed: bool = True) -> int:
    """Offset just after the name at `pos`, read within `end`; WireError when a strict parser
    would refuse it. Names read are noted in `known` for later pointers to them."""
    start = seg = pos
    limit = end
    size = hops = 0
    after = -1
    while True:
        if pos >= limit:
            raise WireError("name runs past the end of its place")
        length = data[pos]
        if length < 64:
            size += length + 1
            if size > MAX_NAME:
                raise WireError("name is longer than 255 bytes")
            if length == 0:
                break
            pos += length + 1
            continue
        if length < 192 or not compressed:
            raise WireError(
                "unknown label type"
                if length < 192
                else "compressed name where the record type forbids compression"
            )
        if pos + 1 >= limit:
            raise WireError("name pointer runs past the end of its place")
        target = (length & 0x3F) << 8 | data[pos + 1]
        if after < 0:
            after = pos + 2
        if target >= seg:
            raise WireError("name pointer does not point backwards")
        hops += 1
        seen = known.get(target)
        if seen is not None:
            if seen[1] > seg or hops + seen[2] > MAX_HOPS or size + seen[0] > MAX_NAME:
                raise WireError("name pointer leads to a name that cannot be read from here")
            size += seen[0]
            hops += seen[2]
            break
        if hops > MAX_HOPS:
            raise WireError("too many name pointers in a chain")
        # The part pointed at must end before the part that jumped begins (no overlap).
        limit = seg
        pos = seg = target
    finished = after if after >= 0 else pos + 1
    known[start] = (size, finished, hops)
    return finished


def check_rdata(data: bytes, rtype: int, rclass: int, pos: int, end: int, *, known: Known) -> None:
    """WireError unless the data of a record (`data[pos:end]`) has the shape of its type."""
    shape = SHAPES.get(rtype)
    if shape is None:
        if rclass == CLASS_IN:
            shape = IN_SHAPES.get(rtype)
        elif rclass == CLASS_CH:
            shape = CH_SHAPES.get(rtype)
        if shape is None:
            return  # opaque data (RFC 3597)
    at = pos
    for field in shape:
        if isinstance(field, int):
            pos += field
        elif field in {"c", "u"}:
            pos = name_end(data, pos, end, known, compressed=field == "c")
        elif field == "s":
            pos += 1 + data[pos] if pos < end else 1
        else:
            pos = _special(data, field, at, pos, end, rtype=rtype, known=known)
        if pos > end:
            break
    if pos != end:
        raise WireError(f"data of a type {rtype} record does not have the shape of its type")


def _special(
    data: bytes, field: str, at: int, pos: int, end: int, *, rtype: int, known: Known
) -> int:
    """Where the field `field` at `pos` ends (see SHAPES); WireError when it is malformed."""
    if field in {"r", "R", "w"}:
        if (field == "R" and pos >= end) or (field == "w" and end - pos > 8192):
            raise WireError("empty URI target or WKS bitmap over 8192 bytes")
        return end
    if field == "z":  # ISDN's subaddress
        return pos + 1 + data[pos] if pos < end else pos
    if field == "S":
        if pos >= end:
            raise WireError("TXT record without a string")
        while pos < end:
            pos += 1 + data[pos]
        return pos
    if field == "b":
        return _bitmap_end(data, pos, end)
    if field in {"h", "t"}:
        return _tag_end(data, field, pos, end)
    if field == "d":
        return _digest_end(data, rtype, at, pos, end)
    if field == "g":
        return _gateway_end(data, rtype, at, pos, end, known=known)
    if field == "p":
        return _svcb_end(data, at, pos, end)
    return _LONG_SHAPES[field](data, pos, end, known)


def _tag_end(data: bytes, field: str, pos: int, end: int) -> int:
    """End of an NSEC3 hash ("h") or a CAA tag ("t"): a length byte, then that many bytes."""
    size = data[pos] if pos < end else 0
    tag = data[pos + 1 : pos + 1 + size]
    if not size or (field == "t" and not (tag.isalnum() and tag.isascii())):
        raise WireError("empty NSEC3 hash or bad CAA tag")
    return pos + 1 + size


def _gateway_end(data: bytes, rtype: int, at: int, pos: int, end: int, *, known: Known) -> int:
    """End of an IPSECKEY or AMTRELAY gateway, whose type the byte at `at + 1` gives."""
    kind = data[at + 1] & (0x7F if rtype == 260 else 0xFF)
    if kind == 3:
        return name_end(data, pos, end, known, compressed=False)
    if kind > 3:
        raise WireError(f"gateway type {kind} of a type {rtype} record")
    return pos + (0, 4, 16)[kind]


def _digest_end(data: bytes, rtype: int, at: int, pos: int, end: int) -> int:
    """End of a digest whose length the type byte before it fixes (see _DIGESTS)."""
    offset, lengths, zero_reserved = _DIGESTS[rtype]
    kind = data[at + offset]
    length = lengths.get(kind)
    if zero_reserved and (kind == 0 or (rtype == 63 and data[at + 4] == 0)):
        raise WireError(f"digest type 0 is reserved in a type {rtype} record")
    if (length is not None and end - pos != length) or (rtype == 63 and end - pos < 12):
        raise WireError(f"digest of type {kind} of the wrong length in a type {rtype} record")
    return end


def _bitmap_end(data: bytes, pos: int, end: int) -> int:
    """End of an NSEC/NSEC3 type bitmap (RFC 4034 4.1.2): windows in increasing order, each
    1 to 32 octets whose last is not zero."""
    last = -1
    while pos < end:
        if pos + 2 > end:
            raise WireError("type bitmap window runs past the record")
        window, size = data[pos], data[pos + 1]
        if window <= last or not 0 < size <= 32 or pos + 2 + size > end:
            raise WireError("malformed type bitmap")
        if data[pos + 1 + size] == 0:
            raise WireError("type bitmap window ends with a zero octet")
        last = window
        pos += 2 + size
    return pos


def _svcb_end(data: bytes, at: int, pos: int, end: int) -> int:
    """End of SVCB/HTTPS parameters (RFC 9460 2.2): keys strictly increasing, each value of its
    key's shape, the keys named mandatory present, no-default-alpn only with alpn."""
    if pos < end and _U16.unpack_from(data, at)[0] == 0:
        raise WireError("SVCB parameters in AliasMode")
    keys: list[int] = []
    mandatory: list[int] = []
    while pos < end:
        if pos + 4 > end:
            raise WireError("SVCB parameter runs past the record")
        key, length = _KEY_LENGTH.unpack_from(data, pos)
        pos += 4
        if (keys and key <= keys[-1]) or pos + length > end:
            raise WireError("SVCB keys out of order or value past the record")
        value = data[pos : pos + length]
        if not _svcb_value_ok(key, value):
            raise WireError(f"SVCB parameter {key} is malformed")
        if key == 0:
            mandatory = [_U16.unpack_from(value, i)[0] for i in range(0, length, 2)]
        keys.append(key)
        pos += length
    if any(key not in keys for key in mandatory) or (2 in keys and 1 not in keys):
        raise WireError("SVCB parameters miss a key they need")
    return pos


def _svcb_value_ok(key: int, value: bytes) -> bool:
    """Whether `value` has the shape of SVCB parameter `key`."""
    size = len(value)
    if key == 0:  # mandatory: keys other than 0, strictly increasing
        listed = [_U16.unpack_from(value, i)[0] for i in range(0, size - 1, 2)]
        return size > 0 and size % 2 == 0 and 0 not in listed and listed == sorted(set(listed))
    if key in (1, 10):  # alpn (at least one), docpath: non-empty character-strings
        pos = 0
        while pos < size:
            if value[pos] == 0:
                return False
            pos += 1 + value[pos]
        return pos == size and (size > 0 or key == 10)
    if key in (2, 8):  # no-default-alpn, ohttp: no value
        return size == 0
    if key == 3:  # port
        return size == 2
    if key in (4, 6):  # ipv4hint, ipv6hint: one address or more
        width = 4 if key == 4 else 16
        return size > 0 and size % width == 0
    if key == 5:  # ech: an ECHConfigList, its own length first (RFC 9849 4)
        return size >= 6 and _U16.unpack_from(value)[0] == size - 2
    return True


def _apl_end(data: bytes, pos: int, end: int, _known: Known) -> int:
    """End of APL items (RFC 3123): an address of its family's size at most, no trailing zero,
    a prefix no longer than the address."""
    while pos < end:
        if pos + 4 > end:
            raise WireError("APL item runs past the record")
        family, prefix, size = data[pos] << 8 | data[pos + 1], data[pos + 2], data[pos + 3] & 0x7F
        widest, longest = {1: (4, 32), 2: (16, 128)}.get(family, (127, 255))
        pos += 4 + size
        if pos > end or size > widest or prefix > longest or (size and data[pos - 1] == 0):
            raise WireError("malformed APL item")
    return pos


def _hip_end(data: bytes, pos: int, end: int, known: Known) -> int:
    """End of HIP data (RFC 8005): HIT and key after their lengths, then rendezvous servers."""
    if pos + 4 > end:
        raise WireError("HIP record too short")
    pos += 4 + data[pos] + _U16.unpack_from(data, pos + 2)[0]
    while pos < end:
        pos = name_end(data, pos, end, known, compressed=False)
    return pos


def _loc_end(data: bytes, pos: int, end: int, _known: Known) -> int:
    """End of LOC data (RFC 1876): version 0, sizes as digit pairs, coordinates in range."""
    if end - pos != 16 or data[pos]:
        raise WireError("LOC record of the wrong length or version")
    for size in data[pos + 1 : pos + 4]:
        if size >> 4 > 9 or size & 0xF > 9 or (size >> 4 == 0 and size & 0xF):
            raise WireError("LOC size not a digit times a power of ten")
    latitude, longitude = struct.unpack_from("!II", data, pos + 4)
    for value, limit in ((latitude, 90), (longitude, 180)):
        if abs(value - _LOC_CENTRE) > limit * _MAS_PER_DEGREE:
            raise WireError("LOC coordinate out of range")
    return end


def _gpos_end(data: bytes, pos: int, end: int, _known: Known) -> int:
    """End of GPOS data (RFC 1712): latitude, longitude and altitude as decimal strings."""
    for limit in (90.0, 180.0, None):
        if pos >= end:
            raise WireError("GPOS record too short")
        text = data[pos + 1 : pos + 1 + data[pos]]
        pos += 1 + data[pos]
        digits = text[1:] if text[:1] in (b"-", b"+") else text
        left, _dot, right = digits.partition(b".")
        plain = (not left or left.isdigit()) and (not right or right.isdigit())
        if not (left or right) or not plain or digits.count(b".") > 1:
            raise WireError("GPOS coordinate is not a decimal number")
        if limit is not None and abs(float(text)) > limit:
            raise WireError("GPOS coordinate out of range")
    return pos


_LONG_SHAPES: dict[str, Callable[[bytes, int, int, Known], int]] = {
    "A": _apl_end, "H": _hip_end, "L": _loc_end, "P": _gpos_end,
}  # fmt: skip
