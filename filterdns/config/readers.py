"""What the section modules read values with: a Walker that knows this configuration, and `Key`
and `Section`, which put a key's reader, its JSON Schema and its default side by side.

A section with fixed keys (`server:`, `cache:` ...) is a frozen dataclass plus a `Section`
listing one `Key` per field, in field order: `Section.read` reads every key (a missing or bad
one keeps the default it is given), then runs the section's own checks across keys. The same
`Key`s give the section's JSON Schema (`config.schema`) and its lines in `default.yaml`
(`config.defaults`), so a key lives in one place: its section module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from filterdns.config.duration import format_duration
from filterdns.config.fragments import (
    Schema,
    boolean,
    duration,
    enum,
    extend,
    integer,
    percent,
    ref,
    string,
    to_json,
)
from filterdns.config.values import (
    DISPLAY_HINT,
    NAME_RULE,
    IPAddress,
    is_name,
    parse_address,
    parse_domain,
    parse_entry,
)
from filterdns.config.walker import Node, Walker, is_null, join, line_of, show
from filterdns.errors import closest
from filterdns.policy.schedule import Calendar
from filterdns.policy.timezones import parse_timezone

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
S = TypeVar("S", bound="DataclassInstance")
Read = Callable[["ConfigReader", Node, str], T | None]

_PERCENT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*")


class ConfigReader(Walker):
    """The readers of this configuration's own value types, and what one file has defined so far
    (categories and calendars that other sections refer to)."""

    def __init__(self, base_dir: Path | None, categories: Sequence[str]) -> None:
        super().__init__()
        self.base_dir = base_dir
        self.known_categories: tuple[str, ...] = tuple(categories)
        self.known_calendars: tuple[Calendar, ...] = ()
        self.calendar_names: tuple[str, ...] = ()  # every name under calendars:, bad ones too

    def parsed(
        self, node: Node, path: str, what: str, parse: Callable[[str], T], empty: str | None
    ) -> tuple[T, ...] | None:
        """A list of strings each read by `parse`; repeats are problems, and so is an empty
        list unless `empty` is None."""
        values: list[T] = []
        first_line: dict[T, int] = {}
        entries = self.items(node, path, what)
        if entries is None:
            return None
        good = True
        for child, child_path in entries:
            text = self.text(child, child_path, what)
            if text is None:
                good = False
                continue
            try:
                value = parse(text)
            except ValueError as exc:
                self.problem(child, child_path, str(exc))
                good = False
                continue
            if value in first_line:
                message = f"{show(text)} is listed twice (first on line {first_line[value]})"
                self.problem(child, child_path, message)
                good = False
                continue
            first_line[value] = line_of(child)
            values.append(value)
        if good and not values and empty is not None:
            self.problem(node, path, empty)
            return None
        return tuple(values) if good else None

    def one(self, node: Node, path: str, expected: str, parse: Callable[[str], T]) -> T | None:
        """A non-empty string read by `parse`; its ValueError is the problem."""
        text = self.text(node, path, expected)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.problem(node, path, str(exc))
            return None

    def file(self, node: Node, path: str) -> Path | None:
        """A file path; a relative one is taken from the configuration file's directory."""
        return self.one(node, path, "a file path", self.path)

    def path(self, text: str) -> Path:
        """`text` as a path: `~` expanded, a relative one taken from the configuration file's
        directory; ValueError for `~name` when the system knows no such user."""
        try:
            found = Path(text.strip()).expanduser()
        except RuntimeError:  # pathlib's "Could not determine home directory."
            raise ValueError(f"{show(text)}: this system has no such user's home") from None
        if not found.is_absolute() and self.base_dir is not None:
            found = self.base_dir / found
        return found

    def positive(self, node: Node, path: str) -> float | None:
        """A duration of more than 0 seconds."""
        return self.duration(node, path, positive=True)

    def percent(self, node: Node, path: str) -> float | None:
        """A share from 0 to 100 percent: `90%`, `90 %` or a plain `90`."""
        text = self.scalar(node, path, "a percentage like 90%")
        if text is None:
            return None
        match = _PERCENT.fullmatch(text)
        if match is None:
            self.problem(node, path, f"{show(text)} is not a percentage like 90% (0 to 100)")
            return None
        value = float(match[1])
        if value > 100:
            self.problem(node, path, f"{show(text)} is more than 100%")
            return None
        return value

    def timezone(self, node: Node, path: str) -> str | None:
        """An IANA time zone, spelt as the system knows it."""
        return self.one(node, path, "an IANA time zone like Europe/Berlin", parse_timezone)

    def addresses(self, node: Node, path: str) -> tuple[IPAddress, ...] | None:
        """A list of IP addresses (possibly empty)."""
        return self.parsed(node, path, "IP addresses", parse_address, None)

    def domains(self, node: Node, path: str) -> tuple[str, ...] | None:
        """A list of domains (possibly empty), normalised."""
        return self.parsed(node, path, "domains", parse_domain, None)

    def entries(self, node: Node, path: str) -> tuple[str, ...] | None:
        """A list of domains or `/regex/` entries (possibly empty), normalised."""
        return self.parsed(node, path, "domains or /regex/ entries", parse_entry, None)

    def category(self, text: str) -> str:
        """A known category name (shipped or under `categories:`); ValueError naming them."""
        name = text.strip()
        if name in self.known_categories:
            return name
        if name == "all":
            raise ValueError('"all" blocks everything only on its own: write block: all')
        message = f"{show(text)} is not a category; valid categories: " + ", ".join(
            self.known_categories
        )
        close = closest(name, self.known_categories)
        if close:
            message += f" (did you mean {close!r}?)"
        raise ValueError(message)

    def category_list(self, node: Node, path: str) -> tuple[str, ...] | None:
        """A list of known categories (possibly empty)."""
        return self.parsed(node, path, "categories", self.category, None)

    def url(self, node: Node, path: str) -> str | None:
        """An http:// or https:// URL with a host."""
        text = self.text(node, path, "an http:// or https:// URL")
        if text is None:
            return None
        text = text.strip()
        scheme, _, rest = text.partition("://")
        if scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
            self.problem(node, path, f"{show(text)} is not an http:// or https:// URL")
            return None
        return text

    def optional_boolean(self, node: Node, path: str) -> bool | None:
        """true or false, for a key whose absence means "inherit"."""
        return self.boolean(node, path)

    def name_key(self, key: str, key_node: Node, path: str, what: str) -> bool:
        """True when `key` is a valid name for a profile or calendar; a problem otherwise."""
        if is_name(key):
            return True
        hint = DISPLAY_HINT if what == "profile" else ""
        self.problem(key_node, path, f"{show(key)} is not a {what} name ({NAME_RULE}{hint})")
        return False

    def below(
        self,
        found: Mapping[str, Node],
        path: str,
        keys: tuple[str, str],
        values: tuple[int, int],
        *,
        strict: bool,
    ) -> int:
        """A per-client or per-server cap kept within its global cap (`strict`: below it, unless
        the global cap is 1). Left at its default, it follows a smaller global cap down; set in
        the file above it, it is a problem."""
        (key, whole_key), (part, whole) = keys, values
        most = max(1, whole - 1) if strict else whole
        if part <= most:
            return part
        node = found.get(key)
        if node is None:
            return most
        if strict:
            message = (
                f"{part} must be less than {path}.{whole_key} ({whole}), or one client could "
                "hold every connection"
            )
        else:
            message = f"{part} must be at most {path}.{whole_key} ({whole})"
        self.problem(node, join(path, key), message)
        return most


@dataclass(frozen=True, slots=True)
class Key(Generic[T]):
    """One key of a section: how it is read, its JSON Schema, and how its default is written."""

    name: str
    read: Read[T]
    schema: Schema
    # `key: null` (or `key:` alone) means None, the key's "off" or "inherit", not a problem.
    nullable: bool = False
    # A path under the state directory by default: default_config places it there, and the
    # schema gives no default (it depends on who runs the proxy).
    state_relative: bool = False
    # How default.yaml writes the default; None: as the JSON Schema does.
    show: Callable[[Any], object] | None = None

    def written(self, value: object) -> object:
        """`value` as default.yaml writes it."""
        return to_json(value) if self.show is None or value is None else self.show(value)


def whole(low: int, high: int) -> Read[int]:
    """The reader of a whole number from `low` to `high`."""

    def read(r: ConfigReader, node: Node, path: str) -> int | None:
        return r.integer(node, path, low, high)

    return read


def choice(kind: type[E]) -> Read[E]:
    """The reader of one of the values of the enum `kind`, spelled exactly."""

    def read(r: ConfigReader, node: Node, path: str) -> E | None:
        text = r.choice(node, path, tuple(kind))
        return None if text is None else kind(text)

    return read


def whole_key(name: str, low: int, high: int, description: str) -> Key[int]:
    """A key holding a whole number from `low` to `high`."""
    return Key(name, whole(low, high), integer(description, low, high))


def duration_text(seconds: float) -> str:
    """A duration as default.yaml writes it: 10s, 5m, 1d (0 as 0s)."""
    return format_duration(seconds) if seconds else "0s"


def duration_key(name: str, description: str, *, positive: bool = False) -> Key[float]:
    """A key holding a duration in seconds (more than 0 when `positive`)."""
    read = ConfigReader.positive if positive else ConfigReader.duration
    schema = duration(description, positive=positive)
    return Key(name, read, schema, show=duration_text)


def ttl_key(name: str, description: str) -> Key[int]:
    """A key holding a TTL: whole seconds, written as a duration."""
    return Key(name, ConfigReader.ttl, extend(ref("duration"), description=description),
               show=duration_text)  # fmt: skip


def boolean_key(name: str, description: str) -> Key[bool]:
    """A key holding true or false."""
    return Key(name, ConfigReader.boolean, boolean(description))


def choice_key(name: str, kind: type[E], description: str) -> Key[E]:
    """A key holding one value of the enum `kind`."""
    return Key(name, choice(kind), enum(description, kind))


def percent_key(name: str, description: str) -> Key[float]:
    """A key holding a percentage from 0 to 100."""
    return Key(name, ConfigReader.percent, percent(description), show=lambda v: f"{v:g}%")


def file_key(name: str, description: str) -> Key[Path]:
    """A key holding a file path under the state directory by default."""
    schema = string(description, minLength=1)
    return Key(name, ConfigReader.file, schema, state_relative=True)


def read_keys(
    r: ConfigReader, found: Mapping[str, Node], path: str, keys: Sequence[Key[Any]], base: object
) -> dict[str, Any]:
    """Every key of `keys` read from `found`; a missing or bad one is its value in `base`."""
    values: dict[str, Any] = {}
    for key in keys:
        node = found.get(key.name)
        if key.nullable and node is not None and is_null(node):
            values[key.name] = None
        else:
            read = functools.partial(key.read, r)
            values[key.name] = r.field(found, path, key.name, read, getattr(base, key.name))
    return values


Check = Callable[[ConfigReader, Mapping[str, Node], S], S]


@dataclass(frozen=True, slots=True)
class Section(Generic[S]):
    """A top-level section with fixed keys, read into its dataclass `kind`."""

    name: str
    kind: type[S]  # the frozen dataclass; its field defaults are the section's defaults
    description: str  # for the JSON Schema and default.yaml
    keys: tuple[Key[Any], ...]  # one per field of `kind`, in field order
    check: Check[S] | None = None  # problems across keys, and values that follow others

    def __post_init__(self) -> None:
        # A field without its key (or a key without its field) would be silently unreadable.
        kind_fields = tuple(f.name for f in fields(self.kind))
        if self.names != kind_fields:
            raise TypeError(f"{self.name}: keys {self.names} are not the fields {kind_fields}")

    @property
    def names(self) -> tuple[str, ...]:
        """The section's keys, in order."""
        return tuple(key.name for key in self.keys)

    def read(self, r: ConfigReader, node: Node | None, base: S, notes: Mapping[str, str]) -> S:
        """The section in `node` over `base`; an absent or empty section is `base`."""
        found = r.section(node, self.name, self.names, notes)
        value = replace(base, **read_keys(r, found, self.name, self.keys, base))
        return value if self.check is None else self.check(r, found, value)


def documented(keys: Sequence[Key[Any]], kind: type[DataclassInstance]) -> dict[str, Schema]:
    """Each key's schema with the default of its field in `kind`, when it has one (not None)."""
    defaults = {f.name: f.default for f in fields(kind) if f.default is not MISSING}
    schemas: dict[str, Schema] = {}
    for key in keys:
        default = defaults.get(key.name)
        schemas[key.name] = (
            key.schema if default is None else extend(key.schema, default=to_json(default))
        )
    return schemas
