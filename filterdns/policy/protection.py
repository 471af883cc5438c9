"""What a new configuration changes in protection, compared with the one in force.

`difference(old, new)` lists every change in words a parent or an admin can act on, each one
flagged `weakens` when someone would be less protected afterwards. A reload computes it against
the running configuration and logs it; the file watch holds back a reload that weakens anything
(a file cut short by a full disk looks exactly like "every rule deleted"), and `filterdns check
--against` prints it as a dry run.

What is compared (pure logic on the parsed values, no profile or key names hard-coded):

- Each profile in both files, as in effect: the band's categories with the profile's, the band's
  and the profile's schedules, SafeSearch, YouTube, bypass protection, the allow and block lists
  and the time zone schedules are read in. Losing a category, a blocking schedule rule (or
  changing one), SafeSearch, a YouTube level, bypass protection or a block-list entry weakens,
  and so does gaining an allow-list entry or a rule that allows categories.
- Each named client: the profile its device gets in each file (its own entry, another entry that
  now matches its address, or the default profile) and what it loses on the way.
- The default profile, for the devices no client rule names.
- Every boolean under `blocking:` going from true to false, and an allow list under it growing;
  `lists.download_defaults` turned off; list sources removed from a category someone blocks;
  alert rules removed; the upstreams replaced by the embedded ones because the file no longer
  names any (`upstreams.servers` gone: a file cut short).
  Other upstream and `server.allow_clients` changes are reported without weakening.
- `local_records:` added, changed or removed: reported; a record added or changed weakens only
  when its name is on some profile's `block` list, since it is answered before any blocking
  (the category lists are not read here: a parent's own block list is what a record overrides
  knowingly or not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from filterdns.config import (
    DEFAULT_CATEGORIES,
    SHIPPED_SOURCE,
    ClientConfig,
    Config,
    LocalRecord,
)
from filterdns.dns.names import is_subdomain
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.effective import compare, protection

EVERY_OTHER_DEVICE = "every other device"  # those no client rule names: the default profile
EVERYONE = "all devices"  # a change of the whole server (a blocking switch, a list source)


@dataclass(frozen=True, slots=True)
class Change:
    """One change in protection as a sentence; `who` names the clients it weakens for."""

    subject: str  # "profile minh", "client minh-tablet", "default profile", "blocking", ...
    text: str  # the whole sentence, subject first
    weakens: bool
    who: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The change as plain JSON values."""
        return {
            "subject": self.subject,
            "text": self.text,
            "weakens": self.weakens,
            "who": list(self.who),
        }


@dataclass(frozen=True, slots=True)
class Difference:
    """Every change in protection between two configurations, in the order found."""

    changes: tuple[Change, ...]

    @property
    def weakens(self) -> bool:
        """True when at least one change leaves someone less protected."""
        return any(change.weakens for change in self.changes)

    def ordered(self) -> tuple[Change, ...]:
        """The changes that weaken protection first, then the others."""
        return tuple(sorted(self.changes, key=lambda change: not change.weakens))

    def who(self) -> tuple[str, ...]:
        """Everyone some change weakens protection for, in order, once each."""
        names = (name for change in self.changes if change.weakens for name in change.who)
        return tuple(dict.fromkeys(names))

    def to_json(self) -> dict[str, object]:
        """The difference as plain JSON values (weakening changes first)."""
        return {
            "weakens": self.weakens,
            "who": list(self.who()),
            "changes": [change.to_json() for change in self.ordered()],
        }


def difference(old: Config, new: Config) -> Difference:
    """Every change in protection from `old` (in force) to `new` (about to be applied)."""
    changes = [
        *_profiles(old, new),
        *_clients(old, new),
        *_default(old, new),
        *_blocking(old, new),
        *_sources(old, new),
        *_alerts(old, new),
        *_network(old, new),
        *_local_records(old, new),
    ]
    return Difference(tuple(changes))


# Sections


def _profiles(old: Config, new: Config) -> list[Change]:
    new_names = {p.name for p in new.profiles}
    changes = []
    for profile in old.profiles:
        subject = f"profile {profile.name}"
        if profile.name not in new_names:
            changes.append(Change(subject, f"{subject}: removed", False))
            continue
        who = _users(old, new, profile.name) or (f"{subject} (no device uses it)",)
        for phrase, weakens in compare(
            protection(old, profile.name), protection(new, profile.name)
        ):
            changes.append(Change(subject, f"{subject}: {phrase}", weakens, who if weakens else ()))
    old_names = {p.name for p in old.profiles}
    for profile in new.profiles:
        if profile.name not in old_names:
            text = f"profile {profile.name}: added (age band {profile.age_band})"
            changes.append(Change(f"profile {profile.name}", text, False))
    return changes


def _users(old: Config, new: Config, profile: str) -> tuple[str, ...]:
    """The clients that have `profile` in both files, and the other devices when it is the
    default in both: whom a change of the profile itself reaches."""
    before = {c.name for c in old.clients if c.profile == profile}
    who = [c.name for c in new.clients if c.profile == profile and c.name in before]
    if old.default_profile == new.default_profile == profile:
        who.append(EVERY_OTHER_DEVICE)
    return tuple(who)


def _clients(old: Config, new: Config) -> list[Change]:
    """Each named client whose device gets another profile, or whose entry is gone or new."""
    old_directory, new_directory = _directory(old), _directory(new)
    new_names = {c.name for c in new.clients}
    old_names = {c.name for c in old.clients}
    changes = []
    for client in old.clients:
        target = _match(new_directory, client)
        if target == (client.name, client.profile):
            continue  # the same entry, the same profile: the profile's own changes say the rest
        if client.name not in new_names:
            why = " (no longer in the file)"
        elif target[0] != client.name:  # its address edited, or a closer entry now matches
            now = "no entry" if target[0] is None else f"client {target[0]}"
            why = f" (its {_address(client)} now matches {now})"
        else:
            why = ""
        changes.append(
            _moved(old, new, client, why=why, before=(client.name, client.profile), after=target)
        )
    for client in new.clients:
        if client.name not in old_names:
            source = _match(old_directory, client)
            why = " (new)" if source[0] is None else f" (new; was client {source[0]})"
            changes.append(
                _moved(
                    old, new, client, why=why, before=source, after=(client.name, client.profile)
                )
            )
    return changes


def _moved(
    old: Config,
    new: Config,
    client: ClientConfig,
    *,
    why: str,
    before: tuple[str | None, str],
    after: tuple[str | None, str],
) -> Change:
    """A client's device going from (entry, profile) `before` in the old file to `after` in
    the new one; no entry name means the default profile."""
    subject = f"client {client.name}"
    was, now = (
        profile + (" (default)" if name is None else "") for name, profile in (before, after)
    )
    found = compare(protection(old, before[1]), protection(new, after[1]))
    profiles = f"profile {was} -> {now}" if was != now else f"profile {now} (unchanged)"
    body = "; ".join(phrase for phrase, _ in found) or "the same protection"
    weakens = any(weakens for _, weakens in found)
    text = f"{subject}{why}: {profiles}: {body}"
    return Change(subject, text, weakens, (client.name,) if weakens else ())


def _directory(config: Config) -> ClientDirectory:
    return ClientDirectory(config.clients, config.default_profile)


def _match(directory: ClientDirectory, client: ClientConfig) -> tuple[str | None, str]:
    """(name of the entry, profile) the device of `client` gets from `directory`; no name for
    the default. A network is judged by its first address, a MAC by its own entry only (its
    IP address is not known here)."""
    if client.mac is not None:
        found = directory.match_mac(client.mac)
        if found is not None:
            return found.name, found.profile
        return None, directory.default_profile
    address = client.ip if client.cidr is None else client.cidr.network_address
    found = directory.match(str(address))
    return found.name, found.profile


def _address(client: ClientConfig) -> str:
    if client.mac is not None:
        return f"mac {client.mac}"
    return f"ip {client.ip}" if client.ip is not None else f"cidr {client.cidr}"


def _default(old: Config, new: Config) -> list[Change]:
    if old.default_profile == new.default_profile:
        return []  # the profile's own changes name the other devices
    subject = "default profile"
    found = compare(protection(old, old.default_profile), protection(new, new.default_profile))
    body = "; ".join(phrase for phrase, _ in found) or "the same protection"
    weakens = any(weakens for _, weakens in found)
    text = (
        f"{subject} (devices no client rule names): {old.default_profile} -> "
        f"{new.default_profile}: {body}"
    )
    return [Change(subject, text, weakens, (EVERY_OTHER_DEVICE,) if weakens else ())]


def _blocking(old: Config, new: Config) -> list[Change]:
    """Every `blocking:` key, generically: a switch turned off weakens, an allow list growing
    weakens; `lists.download_defaults` turned off drops the big downloaded lists."""
    changes = []
    everyone = (EVERYONE,)
    for item in fields(old.blocking):
        key = f"blocking.{item.name}"
        before, after = getattr(old.blocking, item.name), getattr(new.blocking, item.name)
        if before == after:
            continue
        if isinstance(before, bool):
            weakens = before and not after
            text = f"{key} turned {'off' if weakens else 'on'}"
        elif isinstance(before, tuple) and isinstance(after, tuple):
            added = [str(v) for v in after if v not in before]
            removed = [str(v) for v in before if v not in after]
            weakens = "allow" in item.name and bool(added)
            parts = [f"adds {', '.join(added)}"] if added else []
            parts += [f"removes {', '.join(removed)}"] if removed else []
            text = f"{key} {'; '.join(parts)}"
        else:
            weakens = False
            text = f"{key}: {before} -> {after}"
        changes.append(Change("blocking", text, weakens, everyone if weakens else ()))
    if old.lists.download_defaults and not new.lists.download_defaults:
        text = "lists.download_defaults turned off: the big downloaded default lists are dropped"
        changes.append(Change("lists", text, True, everyone))
    return changes


def _sources(old: Config, new: Config) -> list[Change]:
    """List sources removed from (or added to) a category: removed ones weaken when a profile
    blocks the category, since its names would no longer be known."""
    old_sources, new_sources = _category_sources(old), _category_sources(new)
    blocked = _blocked_anywhere(old)
    changes = []
    for category in dict.fromkeys((*old_sources, *new_sources)):
        before, after = old_sources.get(category, ()), new_sources.get(category, ())
        removed = [s for s in before if s not in after]
        added = [s for s in after if s not in before]
        subject = f"category {category}"
        if removed:
            weakens = category in blocked
            text = f"{subject}: sources removed: {', '.join(removed)}"
            changes.append(Change(subject, text, weakens, (EVERYONE,) if weakens else ()))
        if added:
            changes.append(Change(subject, f"{subject}: sources added: {', '.join(added)}", False))
    return changes


def _category_sources(config: Config) -> dict[str, tuple[str, ...]]:
    sources: dict[str, tuple[str, ...]] = {name: (SHIPPED_SOURCE,) for name in DEFAULT_CATEGORIES}
    sources.update(dict(config.categories))
    return sources


def _blocked_anywhere(config: Config) -> set[str]:
    """Every category some profile blocks at some time (band, profile or schedule)."""
    blocked: set[str] = set()
    for profile in config.profiles:
        found = protection(config, profile.name)
        blocked.update(found.categories)
        for rule in found.rules:
            blocked.update(rule.block)
    return blocked


def _alerts(old: Config, new: Config) -> list[Change]:
    new_names = {rule.name for rule in new.alerts}
    changes = []
    for rule in old.alerts:
        if rule.name not in new_names:
            text = (
                f"alert {rule.name}: removed; nobody is told of blocked "
                f"{', '.join(rule.categories)} lookups any more"
            )
            changes.append(Change("alerts", text, True, (EVERYONE,)))
    old_names = {rule.name for rule in old.alerts}
    for rule in new.alerts:
        if rule.name not in old_names:
            changes.append(Change("alerts", f"alert {rule.name}: added", False))
    return changes


def _network(old: Config, new: Config) -> list[Change]:
    """Upstreams and `server.allow_clients`: reported; the upstreams weaken protection only
    when the file no longer names any and the embedded ones would take over (a file cut
    short), since the configured ones may filter themselves (a family resolver)."""
    changes = []
    before, after = old.upstreams.servers, new.upstreams.servers
    if before != after:
        text = f"upstreams: {_servers(before)} -> {_servers(after)}"
        weakens = "upstreams.servers" in old.given and "upstreams.servers" not in new.given
        if weakens:
            text += " (upstreams.servers is gone: the embedded defaults would be asked)"
        changes.append(Change("upstreams", text, weakens, (EVERYONE,) if weakens else ()))
    if old.upstreams.conditional != new.upstreams.conditional:
        suffixes = ", ".join(suffix for suffix, _ in new.upstreams.conditional) or "none"
        changes.append(Change("upstreams", f"upstreams.conditional now: {suffixes}", False))
    if old.server.allow_clients != new.server.allow_clients:
        networks = ", ".join(str(n) for n in new.server.allow_clients)
        changes.append(Change("server", f"server.allow_clients now: {networks}", False))
    return changes


def _servers(servers: Sequence[object]) -> str:
    return ", ".join(str(s) for s in servers)


def _local_records(old: Config, new: Config) -> list[Change]:
    """Local names added, changed or removed; one that some profile blocks weakens."""
    before = {r.name: r for r in old.local_records}
    after = {r.name: r for r in new.local_records}
    changes = []
    for name in dict.fromkeys((*before, *after)):
        was, now = before.get(name), after.get(name)
        if was is not None and now is not None and _same_record(was, now):
            continue
        if now is None:
            changes.append(Change("local records", f"local record {name}: removed", False))
            continue
        what = f"CNAME {now.cname}" if now.cname else ", ".join(str(a) for a in now.addresses)
        text = f"local record {name}: {'added' if was is None else 'changed'} ({what})"
        blockers = [p.name for p in new.profiles if any(is_subdomain(name, d) for d in p.block)]
        if blockers:
            text += f"; answered before the block list of {', '.join(blockers)}"
        changes.append(Change("local records", text, bool(blockers), _who(new, blockers)))
    return changes


def _same_record(a: LocalRecord, b: LocalRecord) -> bool:
    return (a.addresses, a.cname, a.ttl) == (b.addresses, b.cname, b.ttl)


def _who(config: Config, profiles: Sequence[str]) -> tuple[str, ...]:
    """The clients of `profiles`, and the other devices when one of them is the default."""
    who = [c.name for c in config.clients if c.profile in profiles]
    if config.default_profile in profiles:
        who.append(EVERY_OTHER_DEVICE)
    return tuple(who)
