"""The whole configuration: one value per top-level key of the file, each from its section module.

The top-level keys, in the order messages and the JSON Schema list them: the sections with
fixed keys (FIXED_SECTIONS, each a dataclass with its defaults), then the policy keys, which map
names of the user's choosing or are lists or one value. `Config()` is the embedded defaults as
the dataclasses give them; `loader.default_config` adjusts them to who runs the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from filterdns.config import blocking, cache, lists, log, report, server, upstreams, web
from filterdns.config.alerts import AlertConfig
from filterdns.config.bands import BUILTIN_BANDS, BandConfig
from filterdns.config.blocking import BlockingConfig
from filterdns.config.cache import CacheConfig
from filterdns.config.clients import ClientConfig
from filterdns.config.lists import Categories, ListsConfig
from filterdns.config.localrecords import LocalRecord
from filterdns.config.log import LogConfig
from filterdns.config.profiles import HOUSEHOLD, ProfileConfig
from filterdns.config.readers import Section
from filterdns.config.report import ReportConfig
from filterdns.config.schedules import BEDTIME, ScheduleRule
from filterdns.config.server import ServerConfig
from filterdns.config.upstreams import UpstreamsConfig
from filterdns.config.web import WebConfig
from filterdns.policy.schedule import Calendar

FIXED_SECTIONS: tuple[Section[Any], ...] = (
    server.SECTION,
    upstreams.SECTION,
    cache.SECTION,
    log.SECTION,
    lists.SECTION,
    blocking.SECTION,
    report.SECTION,
    web.SECTION,
)
SECTIONS: dict[str, tuple[str, ...]] = {section.name: section.names for section in FIXED_SECTIONS}
# These map names of the user's choosing (or are lists or one value), so their keys are not
# fixed like a section's.
POLICY_KEYS = (
    "categories",
    "age_bands",
    "profiles",
    "calendars",
    "clients",
    "default_profile",
    "alerts",
    "local_records",
)
TOP_LEVEL = (*SECTIONS, *POLICY_KEYS)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; `source` is the file it came from (None for embedded defaults)."""

    server: ServerConfig = field(default_factory=ServerConfig)
    upstreams: UpstreamsConfig = field(default_factory=UpstreamsConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    log: LogConfig = field(default_factory=LogConfig)
    lists: ListsConfig = field(default_factory=ListsConfig)
    # Category name -> its list sources ("shipped", a file path, an http(s):// URL), in file
    # order; categories not named here keep their shipped sources.
    categories: Categories = ()
    source: str | None = None
    # The effective age bands: all of BANDS, in that order, with `age_bands:` overrides applied.
    age_bands: tuple[BandConfig, ...] = BUILTIN_BANDS
    profiles: tuple[ProfileConfig, ...] = (HOUSEHOLD,)
    calendars: tuple[Calendar, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    default_profile: str = HOUSEHOLD.name  # for clients that match no `clients:` entry
    blocking: BlockingConfig = field(default_factory=BlockingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    web: WebConfig = field(default_factory=WebConfig)
    alerts: tuple[AlertConfig, ...] = ()
    # Names the proxy answers itself (`local_records:`), in file order.
    local_records: tuple[LocalRecord, ...] = ()
    # The top-level keys the file gives a value (not null, not empty), and the text it was read
    # from: what a reload compares and saves. Neither takes part in equality: two files that
    # say the same thing are the same configuration.
    given: tuple[str, ...] = field(default=(), compare=False)
    text: str | None = field(default=None, compare=False, repr=False)

    def band(self, name: str) -> BandConfig:
        """The effective age band `name`; KeyError when there is none."""
        for band in self.age_bands:
            if band.name == name:
                return band
        raise KeyError(name)

    def profile(self, name: str) -> ProfileConfig:
        """The profile `name`; KeyError when there is none."""
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise KeyError(name)

    def display_name(self, name: str) -> str:
        """What people call profile `name`: its `display_name`, else the name itself."""
        for profile in self.profiles:
            if profile.name == name:
                return profile.display_name or name
        return name

    def schedules_of(self, profile: ProfileConfig) -> tuple[ScheduleRule, ...]:
        """The schedule rules of `profile`: its band's (unless turned off), then its own.

        A profile's `bedtime:` replaces the band's rules named bedtime (the other band rules
        still apply) and comes first among its own rules.
        """
        band = self.band(profile.age_band).schedules if profile.band_schedules else ()
        if profile.bedtime is None:
            return band + profile.schedules
        kept = tuple(rule for rule in band if rule.name != BEDTIME)
        return kept + profile.bedtime + profile.schedules
