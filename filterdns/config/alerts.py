"""`alerts:` rules that tell a parent or teacher when blocked lookups of some categories pile
up within a window, by a command, a webhook or both.

Beside the categories, a rule may name the pseudo-category REQUEST ("request"): it then also
delivers each child's request to unblock a name (the web app's request page) the moment it is
made, whatever its threshold and window (querylog/notices.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from filterdns.config.fragments import URL_PATTERN, Schema, boolean, closed, extend, ref, string
from filterdns.config.fragments import duration as duration_schema
from filterdns.config.readers import ConfigReader, Key, documented, read_keys, whole_key
from filterdns.config.walker import Node, is_mapping, kind

REQUEST = "request"  # a child's request to unblock a name: delivered at once, not counted


def _categories(r: ConfigReader, node: Node, path: str) -> tuple[str, ...] | None:
    """Known categories, and "request" for the children's requests."""

    def category(text: str) -> str:
        if text.strip() == REQUEST:
            return REQUEST
        try:
            return r.category(text)
        except ValueError as exc:
            raise ValueError(f"{exc}; or {REQUEST} for the children's requests") from None

    return r.parsed(node, path, "categories", category, None)


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """One `alerts:` rule: enough blocked lookups of some categories within a window."""

    name: str
    categories: tuple[str, ...]
    threshold: int = 3
    within: float = 600.0
    per_profile: bool = True
    command: str | None = None  # run with the event as JSON on stdin
    webhook: str | None = None  # POSTed the event as JSON
    timeout: float = 10.0
    retries: int = 3


ALERT: tuple[Key[Any], ...] = (
    Key("name", ConfigReader.text, string('A label (default "alert 1", ...)', minLength=1)),
    Key("categories", _categories, extend(ref("categories"), description=(
        "The categories counted; request: also deliver each child's request at once"))),
    whole_key("threshold", 1, 1_000_000, "Blocked lookups that fire the alert"),
    Key("within", ConfigReader.positive,
        duration_schema("The window the lookups are counted in", positive=True)),
    Key("per_profile", ConfigReader.boolean, boolean("Count per profile (true) or for everyone")),
    Key("command", ConfigReader.text, string("Run with the event as JSON on stdin", minLength=1)),
    Key("webhook", ConfigReader.url, string("POSTed the event as JSON", URL_PATTERN)),
    Key("timeout", ConfigReader.positive,
        duration_schema("Time allowed for the command", positive=True)),
    whole_key("retries", 0, 10, "Retries of the webhook"),
)  # fmt: skip
ALERT_KEYS = tuple(key.name for key in ALERT)
# The name and the webhook are read first, as they always were: problems on one line keep
# that order.
_READ_ORDER = sorted(ALERT, key=lambda key: key.name not in ("name", "webhook"))


def read_alerts(r: ConfigReader, node: Node, path: str) -> tuple[AlertConfig, ...]:
    """The `alerts:` list: categories, a threshold within a window, and at least one action."""
    found: list[AlertConfig] = []
    for index, (child, child_path) in enumerate(r.items(node, path, "alert rules") or []):
        if not is_mapping(child):
            message = (
                "expected an alert like {categories: [adult], threshold: 3, within: 10m, "
                f"webhook: https://...}}, not {kind(child)}"
            )
            r.problem(child, child_path, message)
            continue
        before = len(r.problems)
        rule = _alert(r, child, child_path, AlertConfig(f"alert {index + 1}", ()))
        if len(r.problems) == before:
            found.append(rule)
    return tuple(found)


def _alert(r: ConfigReader, node: Node, path: str, base: AlertConfig) -> AlertConfig:
    found = r.section(node, path, ALERT_KEYS)
    if "categories" not in found:
        r.problem(node, path, "needs categories, e.g. categories: [adult, bypass]")
    if "command" not in found and "webhook" not in found:
        r.problem(node, path, "needs an action: command, webhook or both")
    values = read_keys(r, found, path, _READ_ORDER, base)
    return AlertConfig(**{**values, "name": values["name"].strip()})


def alert_definition() -> Schema:
    """The shared `$defs/alert`: one alert rule."""
    schema = closed(
        "An alert: enough blocked lookups of some categories within a window",
        documented(ALERT, AlertConfig),
        ALERT_KEYS,
    )
    schema["required"] = ["categories"]
    schema["anyOf"] = [{"required": ["command"]}, {"required": ["webhook"]}]
    return schema


def alerts_schema() -> Schema:
    """The schema of `alerts:`."""
    return {
        "description": "Alerts to a parent or teacher when blocked lookups pile up",
        "type": ["array", "null"],
        "items": ref("alert"),
        "default": [],
    }
