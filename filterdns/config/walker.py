"""Reading YAML nodes into typed values while collecting every problem (used by `config`).

The configuration is composed into yaml nodes (not constructed into Python objects) so that each
value keeps its line number. `compose` turns a syntax error into one Problem; a `Walker` reads
sections, lists and scalars from the nodes, recording a Problem (dotted/indexed path, message,
1-based line) for each bad value and carrying on, so a file is reported in one go.

Scalars are read from their text, not from YAML 1.1's implicit types: `yes` is not a boolean,
`1:30` is not 90, and `0777` is not octal. A reader returns None when it recorded a problem.

This is the one module that imports pyyaml: the section modules see a `Node` only through the
Walker and the small predicates below (`is_mapping`, `is_null`, `scalar_text`, ...).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from filterdns.config.duration import parse_duration
from filterdns.errors import Problem, closest

__all__ = [
    "DURATION_HINT",
    "MAX_DURATION",
    "MAX_TTL",
    "Node",
    "Walker",
    "compose",
    "is_empty",
    "is_mapping",
    "is_null",
    "join",
    "keys_of",
    "kind",
    "line_of",
    "only_null_values",
    "scalar_text",
    "show",
    "with_value",
]

T = TypeVar("T")
Reader = Callable[[Node, str], T | None]

NULL_TAG = "tag:yaml.org,2002:null"
MAX_DURATION = 36500 * 86400.0  # 100 years: long enough for any retention, finite for any timer
MAX_TTL = 2**31 - 1  # RFC 2181 section 8
DURATION_HINT = "a duration like 10s, 5m, 24h or 90d"

_BREAK = "\0 \t\r\n\x85\u2028\u2029"
_FLOW_BREAK = _BREAK + ",[]{}"
_INTEGER = re.compile(r"[+-]?[0-9][0-9_]*")
_NEGATIVE_NUMBER = re.compile(r"-\s*[0-9]")
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `[::1, fe80::/10]` as two strings, as YAML 1.2 does.

    PyYAML (YAML 1.1) treats every ':' in a flow collection as the key/value indicator, so an
    unquoted IPv6 address in `[...]` is a syntax error. YAML 1.2 lets a plain scalar start with
    ':' when a non-space character follows, and keeps ':' as the indicator when a space, a flow
    character or the end follows, or when it comes right after a quoted key or a collection
    (`{"a":1}`). Block context is unchanged.
    """

    def check_value(self) -> bool:
        if not self.flow_level:
            return super().check_value()
        return self.peek(1) in _FLOW_BREAK or self._after_json_node()

    def check_plain(self) -> bool:
        if super().check_plain():
            return True
        return bool(self.flow_level) and self.peek() == ":" and self.peek(1) not in _FLOW_BREAK

    def _after_json_node(self) -> bool:
        # The loader is always given a str, so `buffer` holds the whole text.
        index = self.pointer - 1
        while index >= 0 and self.buffer[index] in " \t":
            index -= 1
        return index >= 0 and self.buffer[index] in "\"']}"


def compose(text: str) -> tuple[Node | None, Problem | None]:
    """The root node of `text` (None when the document is empty), or the syntax problem."""
    try:
        return yaml.compose(text, Loader=_Loader), None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = ", ".join(str(part) for part in (exc.context, exc.problem) if part)
        lines = text.splitlines()
        source_line = lines[line - 1] if 0 < line <= len(lines) else ""
        hint = ""
        if "]:" in source_line:
            hint = ' (quote an IPv6 address with a port: "[::1]:53")'
        return None, Problem("", f"invalid YAML: {what or 'syntax error'}{hint}", line)
    except yaml.reader.ReaderError as exc:
        position = exc.position if isinstance(exc.position, int) else 0
        line = text.count("\n", 0, position) + 1
        character = exc.character if isinstance(exc.character, int) else 0
        return None, Problem("", f"invalid YAML: character #x{character:04x} is not allowed", line)
    except yaml.YAMLError as exc:
        return None, Problem("", f"invalid YAML: {exc}", 1)
    except RecursionError:
        return None, Problem("", "invalid YAML: the document is nested too deeply", 1)


def show(text: str) -> str:
    """A value as it appears in messages: double-quoted, escaped."""
    return json.dumps(text, ensure_ascii=False)


def join(path: str, key: str) -> str:
    """`server` + `listen` -> `server.listen`; the top level has an empty path."""
    return f"{path}.{key}" if path else key


def line_of(node: Node) -> int:
    """The 1-based line where `node` starts."""
    return int(node.start_mark.line) + 1


def is_null(node: Node) -> bool:
    """True for an absent value: `key:`, `key: ~`, `key: null`."""
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def is_mapping(node: Node | None) -> bool:
    """True for a mapping node (`{...}` or `key: value` lines)."""
    return isinstance(node, MappingNode)


def is_empty(node: Node | None) -> bool:
    """True for no value at all: absent, null, `{}` or `[]`."""
    if node is None or is_null(node):
        return True
    return isinstance(node, MappingNode | SequenceNode) and not node.value


def only_null_values(node: Node | None) -> bool:
    """True for a mapping whose every value is null: `server:` and nothing under it."""
    return isinstance(node, MappingNode) and all(is_null(value) for _, value in node.value)


def scalar_text(node: Node) -> str | None:
    """The text of a scalar node as written (`null` too), None for a list or a mapping."""
    return str(node.value) if isinstance(node, ScalarNode) else None


def keys_of(node: Node | None) -> list[str]:
    """The keys of a mapping node, in file order (none for anything else)."""
    if not isinstance(node, MappingNode):
        return []
    return [k.value for k, _ in node.value if isinstance(k, ScalarNode) and not is_null(k)]


def with_value(node: Node | None) -> list[str]:
    """The keys of a mapping node that are given a value (not null, not empty), in file order."""
    if not isinstance(node, MappingNode):
        return []
    return [
        str(key.value)
        for key, value in node.value
        if isinstance(key, ScalarNode) and not is_empty(value)
    ]


def kind(node: Node) -> str:
    """What a node is, for messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "nothing" if is_null(node) else "a single value"


class Walker:
    """Reads typed values from nodes, recording a Problem for each bad one."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, node: Node, path: str, message: str) -> None:
        """Record one problem at `node`."""
        self.problems.append(Problem(path, message, line_of(node)))

    def in_file_order(self) -> list[Problem]:
        """Every problem recorded, by line (stable: same-line problems keep their order)."""
        return sorted(self.problems, key=lambda p: p.line or 0)

    # Structure

    def pairs(
        self, node: Node | None, path: str, expected: str
    ) -> Iterator[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping, in file order; duplicates are problems.

        An absent node or a null value is an empty mapping; anything else that is not a mapping
        is a problem described by `expected`.
        """
        if node is None or is_null(node):
            return
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected {expected}, not {kind(node)}")
            return
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or is_null(key_node):
                self.problem(key_node, path, f"a key must be a name, not {kind(key_node)}")
                continue
            key = str(key_node.value)
            if key in seen:
                first = line_of(seen[key])
                self.problem(
                    key_node,
                    join(path, key),
                    f"duplicate key {key!r}; it is already set on line {first}",
                )
                continue
            seen[key] = key_node
            yield key, key_node, value_node

    def section(
        self,
        node: Node | None,
        path: str,
        keys: Sequence[str],
        notes: Mapping[str, str] | None = None,
    ) -> dict[str, Node]:
        """The value nodes of a mapping whose keys must be among `keys`.

        Unknown keys are problems naming the valid keys, with the closest one when it looks like
        a typo and `notes[key]` when there is more to say about that key.
        """
        valid = ", ".join(keys)
        found: dict[str, Node] = {}
        for key, key_node, value_node in self.pairs(node, path, f"a mapping with keys {valid}"):
            if key in keys:
                found[key] = value_node
                continue
            message = f"unknown key {key!r}; valid keys: {valid}"
            close = closest(key, keys)
            if close:
                message += f" (did you mean {close!r}?)"
            note = (notes or {}).get(key)
            if note:
                message += f" ({note})"
            self.problem(key_node, join(path, key), message)
        return found

    def items(self, node: Node, path: str, expected: str) -> list[tuple[Node, str]] | None:
        """The entries of a list with their paths; a single value is a list of one.

        None (after recording the problem) when the node is a mapping.
        """
        if isinstance(node, SequenceNode):
            return [(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            return [] if is_null(node) else [(node, path)]
        self.problem(node, path, f"expected a list of {expected}, not {kind(node)}")
        return None

    def field(
        self, fields: Mapping[str, Node], path: str, key: str, read: Reader[T], default: T
    ) -> T:
        """`read` applied to `fields[key]`, or `default` when the key is absent or bad."""
        node = fields.get(key)
        if node is None:
            return default
        value = read(node, join(path, key))
        return default if value is None else value

    # Scalars

    def scalar(self, node: Node, path: str, expected: str) -> str | None:
        """The text of a scalar; a missing value or a collection is a problem."""
        if isinstance(node, ScalarNode) and not is_null(node):
            return str(node.value)
        if is_null(node):
            message = f"has no value; write {expected} or remove the key to use the default"
        else:
            message = f"expected {expected}, not {kind(node)}"
        self.problem(node, path, message)
        return None

    def text(self, node: Node, path: str, expected: str = "a value") -> str | None:
        """A non-empty string."""
        text = self.scalar(node, path, expected)
        if text is not None and not text.strip():
            self.problem(node, path, f"is empty; expected {expected}")
            return None
        return text

    def integer(self, node: Node, path: str, low: int, high: int) -> int | None:
        """A whole number between `low` and `high`."""
        text = self.scalar(node, path, "a whole number")
        if text is None:
            return None
        if not _INTEGER.fullmatch(text):
            self.problem(node, path, f"{show(text)} is not a whole number")
            return None
        digits = text.replace("_", "")
        value = int(digits) if len(digits) <= 30 else (high + 1 if digits[0] != "-" else low - 1)
        if value < low:
            self.problem(node, path, f"{text} must be at least {low}")
            return None
        if value > high:
            self.problem(node, path, f"{text} must be at most {high}")
            return None
        return value

    def boolean(self, node: Node, path: str) -> bool | None:
        """Strictly `true` or `false` (not yes/no/on/off/1/0)."""
        text = self.scalar(node, path, "true or false")
        if text is None:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.problem(node, path, f"{show(text)} is not true or false")
        return None

    def choice(self, node: Node, path: str, choices: Sequence[str]) -> str | None:
        """One of `choices`, spelled exactly."""
        names = ", ".join(choices)
        text = self.scalar(node, path, f"one of {names}")
        if text is None:
            return None
        if text not in choices:
            self.problem(node, path, f"{show(text)} is not one of {names}")
            return None
        return text

    def duration(self, node: Node, path: str, *, positive: bool = False) -> float | None:
        """Seconds: a bare number or "500ms", "10s", "5m", "24h", "1d", "90d"."""
        text = self.scalar(node, path, DURATION_HINT)
        if text is None:
            return None
        try:
            seconds = parse_duration(text)
        except ValueError:
            if _NEGATIVE_NUMBER.match(text.strip()):
                message = f"{show(text)} is negative; a duration must be 0 or more"
            else:
                message = f"{show(text)} is not a duration like 10s, 5m, 24h or 90d"
            self.problem(node, path, message)
            return None
        if not math.isfinite(seconds) or seconds > MAX_DURATION:
            self.problem(node, path, f"{show(text)} is too long; at most 36500d")
            return None
        if positive and seconds <= 0:
            self.problem(node, path, f"{show(text)} must be more than 0")
            return None
        return seconds

    def ttl(self, node: Node, path: str) -> int | None:
        """A TTL: a duration of whole seconds, at most 2^31 - 1 (RFC 2181)."""
        seconds = self.duration(node, path)
        if seconds is None:
            return None
        if seconds > MAX_TTL:
            self.problem(node, path, f"{show(node.value)} is more than the largest TTL, {MAX_TTL}s")
            return None
        if seconds != int(seconds):
            self.problem(node, path, f"{show(node.value)} is not a whole number of seconds")
            return None
        return int(seconds)
