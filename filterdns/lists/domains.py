"""Domain names as lists hold them: normalised (lower case, IDNA) or refused with a reason."""

from __future__ import annotations

import encodings.idna
import ipaddress
import re

from filterdns.lists.sourcereport import EXAMPLE_WIDTH, SKIP_REASONS

MAX_NAME = 253
MAX_LABEL = 63

# A valid normalised name: two or more labels of [a-z0-9_-]{1,63}, the last one not all digits.
_VALID = re.compile(
    r"(?:[a-z0-9_-]{1,63}\.)+(?![0-9]+\Z)[a-z0-9_-]{1,63}",
).fullmatch
_ASCII_LABEL = re.compile(r"[a-z0-9_-]+").fullmatch
_DOTS = re.compile("[\u3002\uff0e\uff61]")  # the dots IDNA treats as label separators


class InvalidName(ValueError):
    """A text is not a usable domain name; `reason` is one of INVALID_NAME_REASONS."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"{text[:EXAMPLE_WIDTH]!r}: {SKIP_REASONS[reason]}")


def normalize_domain(text: str) -> str:
    """Normalise one name: "Bücher.DE." -> "xn--bcher-kva.de"; raise InvalidName when unusable.

    Lower-cases, strips surrounding whitespace and one trailing dot, encodes non-ASCII labels with
    IDNA (punycode). Accepts `_` and leading/trailing `-` in labels (real lists have them).
    Idempotent: a result normalises to itself.
    """
    name = text.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if len(name) <= MAX_NAME and _VALID(name):
        return name
    return _normalize_slow(text.strip())


def _normalize_slow(text: str) -> str:
    """The careful path of normalize_domain: find the exact reason, or IDNA-encode."""
    name = _DOTS.sub(".", text.lower())
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise InvalidName(text, "empty_label")
    if is_ip(name):
        raise InvalidName(text, "ip_address")
    labels = (lb if lb.isascii() else _idna_label(text, lb) for lb in name.split("."))
    result = ".".join(labels)
    # Judge the ASCII result as a whole: IDNA mapping can produce dots or other characters.
    for label in result.split("."):
        _check_label(text, label)
    if "." not in result:
        raise InvalidName(text, "single_label")
    if len(result) > MAX_NAME:
        raise InvalidName(text, "name_too_long")
    if result.rsplit(".", 1)[1].isdigit():
        raise InvalidName(text, "ip_address")
    return result


def _check_label(text: str, label: str) -> None:
    if not label:
        raise InvalidName(text, "empty_label")
    if not _ASCII_LABEL(label):
        raise InvalidName(text, "bad_character")
    if len(label) > MAX_LABEL:
        raise InvalidName(text, "label_too_long")


def _idna_label(text: str, label: str) -> str:
    """IDNA ToASCII of one non-ASCII label (nameprep, then punycode with the `xn--` prefix)."""
    if "\ufffd" in label:  # an undecodable byte in the source
        raise InvalidName(text, "bad_character")
    try:
        mapped = encodings.idna.nameprep(label)
        if mapped.isascii():
            return mapped
        if mapped.startswith("xn--"):
            raise InvalidName(text, "bad_idna")
        return "xn--" + mapped.encode("punycode").decode("ascii")
    except UnicodeError:
        raise InvalidName(text, "bad_idna") from None


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
