"""Domain names: normalising text names and matching suffixes."""

from __future__ import annotations


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
