"""The configuration: parsed once from YAML into frozen dataclasses, every problem reported.

One YAML section, one module: each section module owns its frozen dataclass (with the defaults),
its reader (problems with YAML path and line) and its JSON Schema fragment.

- `server`, `upstreams`, `cache`, `log`, `lists` (and `categories:`), `blocking`, `report`:
  the sections with fixed keys, each a dataclass and a `Section` of `Key`s (`readers`).
- `bands` (`age_bands:` and the built-in table), `schedules` (schedule rules, `calendars:`),
  `profiles` (`profiles:`, `default_profile:`), `clients`, `alerts`, `localrecords`
  (`local_records:`): the policy keys.
- `model` (the `Config` root), `loader` (`load_config`, `load_config_text`, `default_config`,
  `find_config`), `schema` (the JSON Schema), `defaults` (default.yaml, written from the
  dataclasses), and the shared pieces: `walker` (YAML nodes; the one module importing pyyaml),
  `readers`, `values` (addresses, networks, MACs, names), `fragments`, `duration`.

Components receive their own section (ServerConfig, ...), never the whole Config. Values are
typed once here: addresses and networks as `ipaddress` objects, MACs normalised, durations in
seconds, choices as enums (`Strategy`, `BlockResponse`, `YouTube`, which compare equal to their
text). This package re-exports what the rest of filterdns uses.
"""

from __future__ import annotations

from filterdns.config.alerts import ALERT_KEYS, AlertConfig
from filterdns.config.bands import (
    BAND_KEYS,
    BAND_TABLE,
    BANDS,
    BUILTIN_BANDS,
    YOUTUBE_LEVELS,
    BandConfig,
    YouTube,
    with_always_blocked,
)
from filterdns.config.blocking import BLOCK_RESPONSES, BlockingConfig, BlockResponse
from filterdns.config.cache import MAX_CACHE_ENTRIES, CacheConfig
from filterdns.config.clients import CLIENT_KEYS, ClientConfig
from filterdns.config.lists import (
    DEFAULT_CATEGORIES,
    MODEL_CATEGORIES,
    NEVER_BLOCK_CATEGORY,
    SHIPPED_PREFIX,
    SHIPPED_SOURCE,
    ListsConfig,
)
from filterdns.config.loader import (
    LOCAL_CONFIG,
    ROOT_STATE_DIR,
    STATE_DIR_ENV,
    SYSTEM_CONFIG,
    USER_STATE_DIR,
    default_config,
    find_config,
    load_config,
    load_config_text,
)
from filterdns.config.localrecords import DEFAULT_LOCAL_TTL, LOCAL_RECORD_KEYS, LocalRecord
from filterdns.config.log import LogConfig
from filterdns.config.model import FIXED_SECTIONS, POLICY_KEYS, SECTIONS, TOP_LEVEL, Config
from filterdns.config.profiles import HOUSEHOLD, PROFILE_KEYS, ProfileConfig
from filterdns.config.report import REPORT_LANGUAGES, ReportConfig
from filterdns.config.schedules import ALWAYS_BLOCKED, SCHEDULE_KEYS, ScheduleRule
from filterdns.config.server import (
    MAX_CONNECTIONS,
    MAX_RATE,
    RATE_LIMIT_KEYS,
    ROOT_LISTEN,
    RateLimit,
    ServerConfig,
)
from filterdns.config.upstreams import (
    DEFAULT_PORTS,
    MAX_OUTSTANDING,
    STRATEGIES,
    UPSTREAM_SCHEMES,
    Strategy,
    UpstreamsConfig,
    UpstreamServer,
    parse_upstream,
)
from filterdns.config.values import (
    IPAddress,
    IPNetwork,
    ListenAddress,
    is_domain_name,
    parse_address,
    parse_client_ip,
    parse_client_network,
    parse_domain,
    parse_listen,
    parse_mac,
    parse_network,
)
from filterdns.config.web import WebConfig
from filterdns.dns.addresses import canonical_ip

__all__ = [
    "ALERT_KEYS",
    "ALWAYS_BLOCKED",
    "BANDS",
    "BAND_KEYS",
    "BAND_TABLE",
    "BLOCK_RESPONSES",
    "BUILTIN_BANDS",
    "CLIENT_KEYS",
    "DEFAULT_CATEGORIES",
    "DEFAULT_LOCAL_TTL",
    "DEFAULT_PORTS",
    "FIXED_SECTIONS",
    "HOUSEHOLD",
    "LOCAL_CONFIG",
    "LOCAL_RECORD_KEYS",
    "MAX_CACHE_ENTRIES",
    "MAX_CONNECTIONS",
    "MAX_OUTSTANDING",
    "MAX_RATE",
    "MODEL_CATEGORIES",
    "NEVER_BLOCK_CATEGORY",
    "POLICY_KEYS",
    "PROFILE_KEYS",
    "RATE_LIMIT_KEYS",
    "REPORT_LANGUAGES",
    "ROOT_LISTEN",
    "ROOT_STATE_DIR",
    "SCHEDULE_KEYS",
    "SECTIONS",
    "SHIPPED_PREFIX",
    "SHIPPED_SOURCE",
    "STATE_DIR_ENV",
    "STRATEGIES",
    "SYSTEM_CONFIG",
    "TOP_LEVEL",
    "UPSTREAM_SCHEMES",
    "USER_STATE_DIR",
    "YOUTUBE_LEVELS",
    "AlertConfig",
    "BandConfig",
    "BlockResponse",
    "BlockingConfig",
    "CacheConfig",
    "ClientConfig",
    "Config",
    "IPAddress",
    "IPNetwork",
    "ListenAddress",
    "ListsConfig",
    "LocalRecord",
    "LogConfig",
    "ProfileConfig",
    "RateLimit",
    "ReportConfig",
    "ScheduleRule",
    "ServerConfig",
    "Strategy",
    "UpstreamServer",
    "UpstreamsConfig",
    "WebConfig",
    "YouTube",
    "canonical_ip",
    "default_config",
    "find_config",
    "is_domain_name",
    "load_config",
    "load_config_text",
    "parse_address",
    "parse_client_ip",
    "parse_client_network",
    "parse_domain",
    "parse_listen",
    "parse_mac",
    "parse_network",
    "parse_upstream",
    "with_always_blocked",
]
