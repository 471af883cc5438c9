"""Domain names: text names (normalised, matched by suffix) and names on the wire.

A name on the wire is a sequence of labels, each a length byte and that many bytes, ending in a
zero byte or, in messages, a 2-byte pointer to an earlier name (RFC 1035 4.1.4). The text form
of a name read from the wire is lower-case without the trailing dot, with unusual bytes escaped.
"""

from __future__ import annotations

import struct

from filterdns.errors import WireError

MAX_NAME_WIRE = 255
_PRINTABLE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_*")
_PLAIN_OR_DOT = bytes(_PRINTABLE) + b"."
_POINTER = struct.Struct("!H")


def normalize_name(name: str) -> str:
    """Lower-case a text name and strip one trailing dot: "Example.COM." -> "example.com"."""
    name = name.strip().lower()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return name


def is_subdomain(name: str, suffix: str) -> bool:
    """True when `name` equals `suffix` or lies below it (both normalised); "" is the root."""
    if not suffix or suffix == ".":
        return True
    return name == suffix or name.endswith("." + suffix)


def parents(name: str) -> list[str]:
    """The name and each parent below the root: "a.b.c" -> ["a.b.c", "b.c", "c"]."""
    out = [name]
    while "." in name:
        name = name.split(".", 1)[1]
        out.append(name)
    return out


def name_to_text(wire: bytes) -> str:
    """Lower-case presentation form of an uncompressed wire name, without the trailing dot.

    Bytes outside letters, digits, '-', '_' and '*' are escaped as \\DDD so that a hostile label
    holding a dot can never pass for two labels. The root is ".".
    """
    labels = []
    pos = 0
    length = wire[0]
    while length:
        labels.append(wire[pos + 1 : pos + 1 + length])
        pos += 1 + length
        length = wire[pos]
    if not labels:
        return "."
    text = b".".join(labels).lower()
    # The common case in C: only plain bytes, and no dot but the ones joining the labels.
    if not text.translate(None, _PLAIN_OR_DOT) and text.count(b".") == len(labels) - 1:
        return text.decode("ascii")
    return ".".join(
        "".join(chr(ch) if ch in _PRINTABLE else f"\\{ch:03d}" for ch in label.lower())
        for label in labels
    )


def text_to_wire(name: str) -> bytes:
    """Wire form of a text name: "example.com" -> b"\\x07example\\x03com\\x00"."""
    name = name.rstrip(".")
    out = bytearray()
    if name:
        for label in name.split("."):
            raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise WireError(f"label {label!r} of {name!r} must be 1 to 63 bytes")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > MAX_NAME_WIRE:
        raise WireError(f"name {name!r} is longer than 255 bytes")
    return bytes(out)


def skip_name(data: bytes, pos: int) -> int:
    """Offset just after the (possibly compressed) name at `pos`; WireError when malformed."""
    end = len(data)
    while True:
        if pos >= end:
            raise WireError("name runs past the end of the message")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 2 > end:
                raise WireError("name pointer runs past the end of the message")
            return pos + 2
        if length & 0xC0:
            raise WireError("unknown label type")
        pos += 1 + length


def read_name(data: bytes, pos: int) -> str:
    """The (possibly compressed) name at `pos` as lower-case text; WireError when malformed.

    Pointers must point backwards (RFC 1035 4.1.4), so a hostile loop of pointers ends.
    """
    wire = bytearray()
    end = len(data)
    limit = pos
    while True:
        if pos >= end:
            raise WireError("name runs past the end of the message")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 2 > end:
                raise WireError("name pointer runs past the end of the message")
            target = _POINTER.unpack_from(data, pos)[0] & 0x3FFF
            if target >= limit:
                raise WireError("name pointer does not point backwards")
            pos = limit = target
            continue
        if length & 0xC0:
            raise WireError("unknown label type")
        wire += data[pos : pos + 1 + length]
        if length == 0:
            break
        pos += 1 + length
        if len(wire) > MAX_NAME_WIRE:
            raise WireError("name is longer than 255 bytes")
    return name_to_text(bytes(wire))
