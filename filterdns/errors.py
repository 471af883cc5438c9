"""The exception tree of filterdns.

    FilterDnsError                 base of everything we raise on purpose
    ├── ConfigError                a configuration file is invalid; carries every Problem found
    ├── WireError                  a DNS message could not be parsed (carries the id when readable)
    ├── UpstreamError              an exchange with an upstream failed (timeout, refused, garbage)
    ├── ServerError                a listener could not be started (address in use, permission)
    └── ControlError               the running server could not be found or signalled (reload)

Low-level errors (OSError, asyncio.TimeoutError, ssl.SSLError, yaml errors, dnslib errors) are
caught where they arise and re-raised as one of these with a message naming the thing involved,
e.g. "upstream 9.9.9.9:53 timed out after 2.0 s". Only `cli` turns them into exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class FilterDnsError(Exception):
    """Base class of every error filterdns raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: where it is and what is wrong."""

    path: str
    message: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message}{where}"


class ConfigError(FilterDnsError):
    """The configuration is invalid; `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{head}{len(problems)} problem(s) in the configuration:\n{lines}")


class WireError(FilterDnsError):
    """A DNS message could not be parsed.

    `msg_id` is the message id when the 12-byte header was readable (the server then answers
    FORMERR), else None (the packet is dropped).
    """

    def __init__(self, message: str, msg_id: int | None = None) -> None:
        self.msg_id = msg_id
        super().__init__(message)


class UpstreamError(FilterDnsError):
    """An exchange with an upstream server failed."""


class ServerError(FilterDnsError):
    """A listener could not be started; `unavailable` when the address is not on this machine."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        self.unavailable = unavailable
        super().__init__(message)


class ControlError(FilterDnsError):
    """The running server could not be found or told something (no pid file, not permitted)."""


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice most like `word` for a "did you mean" hint, or None when none is close."""
    # Imported here: only a message about a mistyped name needs it, and every server would
    # otherwise hold difflib (about 0.2 MB) from start-up.
    import difflib  # noqa: PLC0415

    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None
