"""A JSON Schema (draft 2020-12) of the configuration, for editors with YAML language support.

`config_schema()` builds it from the definitions the validator in `config` uses: the keys of
each section (SECTIONS, TOP_LEVEL, POLICY_KEYS, BAND_KEYS, PROFILE_KEYS, SCHEDULE_KEYS,
CLIENT_KEYS, ALERT_KEYS), the choices (STRATEGIES, BANDS, YOUTUBE_LEVELS, BLOCK_RESPONSES,
REPORT_LANGUAGES), the shipped categories and the defaults of `default_config(is_root=False)`.
What a key's value looks like and its description are written below (`_sections`, `_policy`,
`_profile_schema`, ...); a key the validator reads that has no schema there, or a schema of a key
it does not read, makes `config_schema` raise KeyError, so the two cannot drift apart (and
tests/unit/test_schemagen.py keeps the shipped copy in step).

The schema is deliberately a little looser than the validator (which also checks addresses,
time zones, references between sections and so on): it never rejects a valid file. The
validator, like YAML 1.2, reads `[::1]` and `21:00` as strings; a single value may stand for a
list of one, and an empty value for an empty list or mapping.

`python -m filterdns.config.schema > schema/filterdns.schema.json` writes the shipped copy.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, fields
from pathlib import Path

from filterdns.config import (
    ALERT_KEYS,
    BAND_KEYS,
    BAND_TABLE,
    BANDS,
    BLOCK_RESPONSES,
    CLIENT_KEYS,
    DEFAULT_CATEGORIES,
    MAX_CACHE_ENTRIES,
    MAX_CONNECTIONS,
    MAX_OUTSTANDING,
    MAX_RATE,
    PROFILE_KEYS,
    REPORT_LANGUAGES,
    SCHEDULE_KEYS,
    SECTIONS,
    STRATEGIES,
    TOP_LEVEL,
    UPSTREAM_SCHEMES,
    YOUTUBE_LEVELS,
    AlertConfig,
    Config,
    ProfileConfig,
    RateLimit,
    default_config,
)

Schema = dict[str, object]

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Value patterns: loose, so that every value the validator accepts matches (it says what is
# wrong with the rest).
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$"
_ADDRESS = r"[0-9A-Fa-f:.]+(%[^\s\]/]+)?"
LISTEN_PATTERN = rf"^\s*(\[{_ADDRESS}\](:\d+)?|{_ADDRESS})\s*$"
_SCHEMES = "|".join(
    "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in scheme)
    for scheme in UPSTREAM_SCHEMES
)
# With a scheme anything may follow (https:// takes a URL); without one, an address and port.
UPSTREAM_PATTERN = rf"^\s*(({_SCHEMES})://\S+|\[{_ADDRESS}\](:\d+)?|{_ADDRESS})\s*$"
IP_PATTERN = rf"^\s*{_ADDRESS}\s*$"
NETWORK_PATTERN = rf"^\s*{_ADDRESS}(/\d{{1,3}})?\s*$"
MAC_PATTERN = r"^\s*[0-9A-Fa-f]{2}([:.-]?[0-9A-Fa-f]{2}){5}\s*$"
CATEGORY_PATTERN = r"^\s*[a-z0-9][a-z0-9_-]{0,39}\s*$"
CATEGORY_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
NAME_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Letters of any script, digits, '-', '_', '.' (ECMA regexes without the u flag know no \p{L}:
# every other printable ASCII character is left out instead).
NAME_PATTERN = r"^\s*[^\s!-/:-@\[-`{-~][^\s!-,/:-@\[-^`{-~]{0,63}\s*$"
CLOCK_PATTERN = r"^\s*\d{1,2}:\d{2}\s*$"
DAY_PATTERN = r"^\s*[A-Za-z]+(\s*-\s*[A-Za-z]+)?\s*$"
DATE_PATTERN = r"^\s*\d{4}-\d{2}-\d{2}(\s*\.\.\s*\d{4}-\d{2}-\d{2})?\s*$"
URL_PATTERN = r"^\s*[Hh][Tt][Tt][Pp][Ss]?://[^/\s]+"
PERCENT_PATTERN = r"^\s*\d+(\.\d+)?\s*%?\s*$"


# Building blocks


def _ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def _list(item: Schema, description: str | None = None) -> Schema:
    """A list of `item`; as in the validator, one value is a list of one and none is empty."""
    schema: Schema = {"anyOf": [{"type": "array", "items": item}, item, {"type": "null"}]}
    if description:
        schema = {"description": description, **schema}
    return schema


def _mapping(
    description: str, values: Schema, names: Schema | None = None, **extra: object
) -> Schema:
    """An object of names of the user's choosing (a null value is an empty one)."""
    schema: Schema = {"description": description, "type": ["object", "null"]}
    if names is not None:
        schema["propertyNames"] = names
    schema["additionalProperties"] = values
    schema.update(extra)
    return schema


def _closed(description: str, properties: Mapping[str, Schema], keys: Sequence[str]) -> Schema:
    """An object with exactly the keys `keys` (in that order) and no others."""
    missing = [key for key in keys if key not in properties]
    extra = [key for key in properties if key not in keys]
    if missing or extra:
        raise KeyError(f"schema of {description!r}: missing {missing}, not read {extra}")
    return {
        "description": description,
        "type": "object",
        "properties": {key: properties[key] for key in keys},
        "additionalProperties": False,
    }


def _string(description: str, pattern: str | None = None, **extra: object) -> Schema:
    schema: Schema = {"description": description, "type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    schema.update(extra)
    return schema


def _enum(description: str, choices: Iterable[object]) -> Schema:
    return {"description": description, "enum": list(choices)}


def _integer(description: str, low: int, high: int) -> Schema:
    return {"description": description, "type": "integer", "minimum": low, "maximum": high}


def _percent(description: str) -> Schema:
    """0 to 100: a number, or a string like "90%"."""
    return {
        "description": description,
        "oneOf": [
            {"type": "number", "minimum": 0, "maximum": 100},
            {"type": "string", "pattern": PERCENT_PATTERN},
        ],
    }


def _boolean(description: str) -> Schema:
    return {"description": description, "type": "boolean"}


def _duration(description: str, *, positive: bool = False) -> Schema:
    """Seconds, or a number with a unit: 500ms, 10s, 5m, 24h, 1d, 2w."""
    number: Schema = {"type": "number", "minimum": 0}
    if positive:
        number = {"type": "number", "exclusiveMinimum": 0}
    return {
        "description": description,
        "oneOf": [number, {"type": "string", "pattern": DURATION_PATTERN}],
    }


def _with(schema: Schema, **extra: object) -> Schema:
    return {**schema, **extra}


def _json(value: object) -> object:
    """A default value as it may be written in the file (durations in seconds)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Path | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if isinstance(value, RateLimit):
        return {"per_client_qps": value.per_client_qps, "burst": value.burst}
    return str(value)  # ListenAddress, UpstreamServer


# Shared definitions


def _category_description() -> str:
    return (
        "A category: a shipped one ("
        + ", ".join(DEFAULT_CATEGORIES)
        + ") or a name defined under categories:"
    )


def _defs() -> dict[str, Schema]:
    category = _string(_category_description(), CATEGORY_PATTERN, examples=list(DEFAULT_CATEGORIES))
    domain = _string("A domain like example.com; it covers its subdomains", minLength=1)
    schedule_properties: dict[str, Schema] = {
        "name": _string('A label for reports and explain (default "schedule 1", ...)'),
        "days": _list(
            _string("A day or a range of days", DAY_PATTERN),
            "Days the rule starts on: mon..sun, ranges like mon-fri or fri-mon, daily, "
            "weekdays, weekends",
        ),
        "from": _string('Start time "HH:MM" (quoted)', CLOCK_PATTERN, examples=["21:00"]),
        "to": _string(
            'End time "HH:MM" (quoted); at or before `from` it crosses midnight; "24:00" is '
            "midnight",
            CLOCK_PATTERN,
            examples=["06:30"],
        ),
        "block": {
            "description": "all: block everything (except `allow`), or categories blocked "
            "while the rule is active",
            "anyOf": [{"const": "all"}, _ref("categories")],
        },
        "allow": _list(_ref("domain"), "Domains still answered during block: all"),
        "allow_categories": _with(
            _ref("categories"),
            description="Categories allowed while active even though the band blocks them "
            "(never malware, phishing, cryptojacking or stalkerware)",
        ),
        "except": _string("A calendar name: no occurrence starts on its dates", NAME_PATTERN),
    }
    schedule = _closed(
        "A schedule rule: active on `days` from `from` to `to`, with one kind of action: "
        "block: all (with allow), or block: [categories] and/or allow_categories",
        schedule_properties,
        SCHEDULE_KEYS,
    )
    schedule["required"] = ["days", "from", "to"]
    return {
        "duration": _duration("Seconds, or a number with a unit: 500ms, 10s, 5m, 24h, 1d, 2w"),
        "category": category,
        "categories": _list(_ref("category"), "Categories"),
        "domain": domain,
        "schedule": schedule,
        "schedules": _list(_ref("schedule"), "Schedule rules"),
        "upstream": _string(
            "An upstream resolver by IP address; schemes: "
            + ", ".join(f"{scheme}://" for scheme in UPSTREAM_SCHEMES)
            + '. E.g. 9.9.9.9, udp://9.9.9.9:53, tcp://8.8.8.8, "[2620:fe::fe]:53", '
            "tls://1.1.1.1#cloudflare-dns.com",
            UPSTREAM_PATTERN,
        ),
    }


# The sections, key by key


def _sections() -> dict[str, dict[str, Schema]]:
    """For each section of SECTIONS, the schema of each key's value."""
    return {
        "server": {
            "listen": _list(
                _string("An address to listen on", LISTEN_PATTERN),
                'Addresses to answer on over UDP and TCP: "IPv4:port", "[IPv6]:port", or an '
                "address alone for port 53; port 0 picks a free port. As root the default is "
                "0.0.0.0:53 and [::]:53",
            ),
            "allow_clients": _list(
                _string("An address or network", NETWORK_PATTERN),
                "Who may ask: addresses or networks (CIDR); everyone else gets REFUSED over TCP "
                "and no answer over UDP",
            ),
            "tcp_idle_timeout": _duration(
                "A TCP client connection with no query for this long is closed", positive=True
            ),
            "max_tcp_connections": _integer(
                "At most this many TCP client connections", 1, MAX_CONNECTIONS
            ),
            "max_tcp_connections_per_client": _integer(
                "At most this many TCP connections from one client address; less than "
                "max_tcp_connections",
                1,
                MAX_CONNECTIONS,
            ),
            "shutdown_grace": _duration("On SIGTERM or Ctrl-C, queries in flight get this long"),
            "timezone": {
                "description": "The IANA time zone schedules are read in, e.g. Europe/Berlin; "
                "null: the system's",
                "type": ["string", "null"],
                "examples": ["Europe/Berlin", "America/New_York", "Asia/Ho_Chi_Minh"],
            },
            "user": {
                "description": "Started as root without systemd: the user to run as after "
                "binding; null: stay as started",
                "type": ["string", "null"],
                "examples": ["filterdns", "nobody"],
            },
            "metrics": {
                "description": "Where Prometheus scrapes /metrics, e.g. 127.0.0.1:9153; null: off",
                "type": ["string", "null"],
                "examples": ["127.0.0.1:9153"],
            },
            "rate_limit": {
                "description": "Queries a second each client address may ask (on average, and "
                "at once); over it UDP is dropped and TCP refused; null: no limit",
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "per_client_qps": _integer("Average queries a second", 1, MAX_RATE),
                    "burst": _integer("Queries at once before the average applies", 1, MAX_RATE),
                },
            },
        },
        "upstreams": {
            "servers": _list(
                _ref("upstream"), "The resolvers asked for every name not answered here"
            ),
            "strategy": _enum(
                "How servers are chosen: failover (in order), round_robin or fastest",
                STRATEGIES,
            ),
            "timeout": _duration("One deadline for a query across all servers", positive=True),
            "backoff": _duration("Longest time a failing server is skipped (doubling)"),
            "max_outstanding": _integer(
                "Queries in flight to the upstreams at once; past it, stale data or SERVFAIL "
                "at once",
                1,
                MAX_OUTSTANDING,
            ),
            "max_outstanding_per_server": _integer(
                "Queries in flight to one upstream at once; at most max_outstanding",
                1,
                MAX_OUTSTANDING,
            ),
            "conditional": _mapping(
                "Names under a domain suffix go to their own servers",
                _list(_ref("upstream")),
                examples=[{"home.arpa": "192.168.1.1"}],
            ),
            "trust_ad": _boolean(
                "The servers validate DNSSEC: pass their AD bit to clients that set DO or AD"
            ),
        },
        "cache": {
            "max_entries": _integer(
                "Answers kept in memory; 0 turns the cache off", 0, MAX_CACHE_ENTRIES
            ),
            "serve_stale": _duration(
                "How long after expiry an answer may still be served while every upstream "
                "fails (RFC 8767); 0 turns it off"
            ),
            "prefetch": _boolean("Refresh popular names shortly before they expire"),
            "min_ttl": _with(_ref("duration"), description="Shortest TTL of cached answers"),
            "max_ttl": _with(_ref("duration"), description="Longest TTL of cached answers"),
            "negative_max_ttl": _with(
                _ref("duration"),
                description="Longest time a negative answer is cached (RFC 2308)",
            ),
        },
        "log": {
            "database": _string(
                "The SQLite database of blocked lookups; relative to this file's directory. "
                "Default: filterdns.db in the state directory",
                minLength=1,
            ),
            "retention": _duration("Lookups older than this are deleted", positive=True),
            "log_allowed": _boolean("Record allowed lookups too, not only blocked ones"),
            "anonymize_clients": _boolean("Record lookups without the client's address"),
        },
        "lists": {
            "refresh": _duration("How often each remote list source is downloaded again; 0: never"),
            "cache_dir": _string(
                "Where downloaded lists are kept; relative to this file's directory. "
                "Default: lists in the state directory",
                minLength=1,
            ),
            "timeout": _duration("Time allowed for one whole download", positive=True),
            "max_megabytes": _integer("A bigger download is refused", 1, 4096),
            "download_defaults": _boolean(
                "Download the big default lists too big to ship; false keeps to shipped files"
            ),
            "max_shrink": _percent(
                "A new version of a source with fewer than (100 - max_shrink) % of the entries "
                "of its last good copy is rejected and the copy kept; 100% accepts any shrink"
            ),
        },
        "blocking": {
            "response": _enum(
                "How blocked names are answered: nxdomain, null (0.0.0.0 / ::), refused or "
                "custom (custom_ips)",
                [*BLOCK_RESPONSES, None],
            ),
            "custom_ips": _list(
                _string("An IP address", IP_PATTERN), "The addresses answered with custom"
            ),
            "ttl": _with(_ref("duration"), description="TTL of a blocked answer"),
            "bypass_protection": _boolean(
                "Stop the usual ways around the filter (DoH canary, Private Relay, bypass)"
            ),
            "cname_inspection": _boolean(
                "Judge every CNAME/DNAME target and SVCB/HTTPS target name of an answer like "
                "the name asked"
            ),
            "rebinding_protection": _boolean(
                "Answers to public names lose private, loopback, link-local, CGNAT and "
                "unique-local addresses (NODATA)"
            ),
            "rebinding_allow": _list(
                _ref("domain"),
                "Names (and their subdomains) whose answers may hold private addresses",
            ),
        },
        "report": {
            "lang": _enum("The language of reports", REPORT_LANGUAGES),
            "footer": {
                "description": "A line at the bottom of every report",
                "type": ["string", "null"],
            },
        },
    }


_SECTION_DESCRIPTIONS = {
    "server": "Where and to whom the proxy answers",
    "upstreams": "The resolvers the proxy forwards to",
    "cache": "Size, TTL clamps, serve-stale and prefetch",
    "log": "Where blocked lookups are recorded (SQLite) and for how long",
    "lists": "How remote list sources are fetched and where their copies are kept",
    "blocking": "How blocked names are answered",
    "report": "The language and footer of the reports parents and teachers read",
}


def _section_schema(name: str, values: Mapping[str, Schema], defaults: object) -> Schema:
    keys = SECTIONS[name]
    properties: dict[str, Schema] = {}
    for key in keys:
        if key not in values:
            raise KeyError(f"{name}.{key} is read by the validator but has no schema")
        schema = dict(values[key])
        default = getattr(defaults, key)
        if "additionalProperties" in schema and isinstance(default, tuple):  # (name, value) pairs
            schema["default"] = {name: _json(value) for name, value in default}
        elif key not in ("database", "cache_dir"):  # those depend on the state directory
            schema["default"] = _json(default)
        properties[key] = schema
    schema = _closed(_SECTION_DESCRIPTIONS[name], properties, keys)
    schema["type"] = ["object", "null"]
    return schema


def _band_schema(
    name: str,
    categories: Sequence[str],
    safesearch: bool,
    youtube: str,
    windows: Sequence[tuple[str, str, str]],
) -> Schema:
    rules = [
        {"name": "bedtime", "days": [days], "from": start, "to": end, "block": "all"}
        for days, start, end in windows
    ]
    properties: dict[str, Schema] = {
        "categories": _with(
            _ref("categories"),
            description="Blocked categories (the whole list; malware, phishing, cryptojacking "
            "and stalkerware are always blocked)",
            default=list(categories),
        ),
        "safesearch": _with(_boolean("SafeSearch enforced"), default=safesearch),
        "youtube": _with(_enum("YouTube restriction", YOUTUBE_LEVELS), default=youtube),
        "schedules": _with(
            _ref("schedules"),
            description="The band's schedules (the whole list; [] removes the bedtime)",
            default=rules,
        ),
    }
    schema = _closed(f"Overrides of the age band {name}", properties, BAND_KEYS)
    schema["type"] = ["object", "null"]
    return schema


def _profile_schema() -> Schema:
    defaults = {f.name: f.default for f in fields(ProfileConfig) if f.default is not MISSING}
    properties: dict[str, Schema] = {
        "age_band": _enum("The age band (required)", BANDS),
        "block": _list(_ref("domain"), "Extra domains blocked at all times"),
        "allow": _list(_ref("domain"), "Domains allowed at all times"),
        "categories": _with(_ref("categories"), description="Extra categories blocked"),
        "safesearch": _boolean("SafeSearch; default: the band's"),
        "youtube": _enum("YouTube restriction; default: the band's", YOUTUBE_LEVELS),
        "schedules": _with(_ref("schedules"), description="Rules added to the band's schedules"),
        "display_name": _string(
            'How people call the profile in reports, tail and alerts, e.g. "Bình (lớp 6A)"',
            minLength=1,
            maxLength=64,
        ),
        "band_schedules": _boolean(
            "Whether the band's default schedules (its bedtime) apply to this profile"
        ),
        "timezone": _string(
            "An IANA time zone for this profile's schedules; default: server.timezone",
            examples=["Europe/Berlin"],
        ),
    }
    for key, default in defaults.items():
        if key in properties and default is not None:
            properties[key] = _with(properties[key], default=_json(default))
    schema = _closed("A profile: one child, class or group", properties, PROFILE_KEYS)
    schema["required"] = ["age_band"]
    return schema


def _client_schema() -> Schema:
    properties: dict[str, Schema] = {
        "name": _string("A name for the device or network", minLength=1),
        "ip": _string("One address, e.g. 192.168.1.23", IP_PATTERN),
        "cidr": _string("A network, e.g. 10.6.1.0/24", NETWORK_PATTERN),
        "mac": _string("A MAC address, e.g. aa:bb:cc:dd:ee:ff", MAC_PATTERN),
        "profile": _string("The profile this client gets", minLength=1),
    }
    schema = _closed(
        "A device (ip or mac) or network (cidr) and its profile", properties, CLIENT_KEYS
    )
    schema["required"] = ["name", "profile"]
    schema["oneOf"] = [{"required": [key]} for key in ("ip", "cidr", "mac")]
    return schema


def _alert_schema() -> Schema:
    defaults = {f.name: f.default for f in fields(AlertConfig) if f.default is not MISSING}
    properties: dict[str, Schema] = {
        "name": _string('A label (default "alert 1", ...)', minLength=1),
        "categories": _with(_ref("categories"), description="The categories counted"),
        "threshold": _integer("Blocked lookups that fire the alert", 1, 1_000_000),
        "within": _duration("The window the lookups are counted in", positive=True),
        "per_profile": _boolean("Count per profile (true) or for everyone"),
        "command": _string("Run with the event as JSON on stdin", minLength=1),
        "webhook": _string("POSTed the event as JSON", URL_PATTERN),
        "timeout": _duration("Time allowed for the command", positive=True),
        "retries": _integer("Retries of the webhook", 0, 10),
    }
    for key, default in defaults.items():
        if key in properties and default is not None:
            properties[key] = _with(properties[key], default=_json(default))
    schema = _closed(
        "An alert: enough blocked lookups of some categories within a window",
        properties,
        ALERT_KEYS,
    )
    schema["required"] = ["categories"]
    schema["anyOf"] = [{"required": ["command"]}, {"required": ["webhook"]}]
    return schema


def _policy(defaults: Config) -> dict[str, Schema]:
    """The schema of each key of POLICY_KEYS."""
    bands = {
        name: _band_schema(name, categories, safesearch, youtube, windows)
        for name, categories, safesearch, youtube, windows in BAND_TABLE
    }
    return {
        "categories": _mapping(
            "The list sources of each category: shipped, a file or an http(s):// URL. "
            "Shipped categories: " + ", ".join(DEFAULT_CATEGORIES) + "; new names add categories",
            _list(_string("A list source: shipped, a file path or an http(s):// URL")),
            {"pattern": CATEGORY_KEY_PATTERN},
            default={name: _json(sources) for name, sources in defaults.categories},
        ),
        "age_bands": {
            "description": "Overrides of the built-in age bands",
            "type": ["object", "null"],
            "properties": bands,
            "additionalProperties": False,
            "default": {},
        },
        "calendars": _mapping(
            'Named sets of dates: "YYYY-MM-DD" days and "YYYY-MM-DD..YYYY-MM-DD" ranges',
            _list(_string("A date or a range of dates", DATE_PATTERN)),
            {"pattern": NAME_KEY_PATTERN},
            default={},
        ),
        "profiles": _mapping(
            "Profiles: one child, class or group each; they replace the default one",
            _ref("profile"),
            {"pattern": NAME_KEY_PATTERN},
            default={p.name: {"age_band": p.age_band} for p in defaults.profiles},
        ),
        "clients": {
            "description": "Devices and networks, each with a name, a profile and exactly one "
            "of ip, cidr or mac",
            "type": ["array", "null"],
            "items": _ref("client"),
            "default": [],
        },
        "default_profile": _string(
            "The profile of every client no entry matches",
            minLength=1,
            default=defaults.default_profile,
        ),
        "alerts": {
            "description": "Alerts to a parent or teacher when blocked lookups pile up",
            "type": ["array", "null"],
            "items": _ref("alert"),
            "default": [],
        },
    }


def config_schema() -> Schema:
    """The JSON Schema of a configuration file."""
    defaults = default_config(is_root=False, state_dir=Path("."))
    sections = _sections()
    unread = sorted(set(sections) - set(SECTIONS))
    if unread:
        raise KeyError(f"schema of sections the validator does not read: {unread}")
    properties: dict[str, Schema] = {
        name: _section_schema(name, sections[name], getattr(defaults, name)) for name in SECTIONS
    }
    properties.update(_policy(defaults))
    defs = _defs()
    defs["profile"] = _profile_schema()
    defs["client"] = _client_schema()
    defs["alert"] = _alert_schema()
    root = _closed("filterdns configuration", properties, TOP_LEVEL)
    # A file with no setting at all (empty, only comments, `{}`) is refused by the validator:
    # it is far more often a write cut short than a wish for the defaults.
    root["minProperties"] = 1
    return {
        "$schema": DRAFT,
        "title": "filterdns configuration",
        **root,
        "$defs": defs,
    }


if __name__ == "__main__":
    print(json.dumps(config_schema(), indent=2))
