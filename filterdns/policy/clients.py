"""Who is asking: the `clients:` rules that map a source address to a profile.

A rule names one device or network by exactly one of `mac`, `ip` or `cidr`. The most specific
rule wins, in this order:

1. a `mac` rule for the MAC the neighbour table gives for the source address — a MAC rule beats
   an `ip` rule for the same address, because the MAC follows the device when its lease changes
   while the IP may have been handed to another device;
2. an `ip` rule for the exact address;
3. an `ip` rule for another address of the same device: the neighbour table gives the source's
   MAC, and that MAC's other addresses (a phone asks over IPv6 with a rule for its IPv4 address);
4. the `cidr` rule with the longest prefix containing the address;
5. a `cidr` rule containing another address of the same device (a classroom's IPv4 subnet
   for its devices' IPv6 addresses);
6. else `default_profile`.

So one device gets one profile on both address families. Steps 3 and 5 look at the other
family only, and only when rules of that family exist: an IPv6 source is looked up in the
neighbour table when there are IPv4 rules, and the other way round.

Addresses are compared in canonical form: scope ids are dropped ("fe80::1%eth0" is fe80::1) and
IPv4-mapped IPv6 addresses count as IPv4 ("::ffff:10.0.0.5" is 10.0.0.5), in rules (as the
configuration reads them, `config.clients`) as in queries (`config.canonical_ip`).

Speed: the address-only part of a verdict (steps 2, 4, 6) never changes for one directory, so it
is cached per source text (bounded; cleared whole past 65536 entries). The MAC step is never
cached: it is one lookup in the in-memory neighbour table per query, so a MAC that moves to a new
IP is followed as soon as the table is refreshed. Steps 3 and 5 are remembered per source until
the neighbour table changes (its `generation`). CIDR rules are kept per prefix length as dicts of
network integers, longest prefix first, so a lookup costs one dict probe per distinct length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from filterdns.config import ClientConfig, canonical_ip
from filterdns.memo import Memo
from filterdns.policy.neighbors import Neighbours, normalize_mac

__all__ = ["ClientDirectory", "ClientMatch"]

_MAX_CACHE = 65536
# Which kind of rule an address-only verdict came from (steps 2, 4, 6), kept beside it.
_IP, _CIDR, _DEFAULT = "ip", "cidr", "default"


@dataclass(frozen=True, slots=True)
class ClientMatch:
    """The verdict for one source: the rule's name (None for the default), profile, and why.

    `how` is "mac aa:bb:cc:dd:ee:ff", "ip 192.168.1.23", "cidr 10.6.1.0/24" or "default".
    """

    name: str | None
    profile: str
    how: str


@dataclass(frozen=True, slots=True)
class _Prefix:
    """The CIDR rules of one IP version and prefix length: network int -> verdict."""

    mask: int
    networks: dict[int, ClientMatch]


class ClientDirectory:
    """Maps a source address to a profile by the `clients:` rules; see the module docstring.

    The rules are the configuration's, read and checked once: each has exactly one of ip, cidr
    and mac in canonical form, and none is given twice.
    """

    def __init__(
        self,
        rules: Sequence[ClientConfig],
        default_profile: str,
        neighbours: Neighbours | None = None,
    ) -> None:
        self._default = ClientMatch(None, default_profile, "default")
        self._neighbours = neighbours
        self._by_mac: dict[str, ClientMatch] = {}
        self._by_ip: dict[str, ClientMatch] = {}
        by_prefix: dict[tuple[int, int], dict[int, ClientMatch]] = {}
        families: set[int] = set()  # the IP versions of ip and cidr rules
        for rule in rules:
            name = rule.name or None
            if rule.mac is not None:
                self._by_mac[rule.mac] = ClientMatch(name, rule.profile, f"mac {rule.mac}")
            elif rule.ip is not None:
                self._by_ip[str(rule.ip)] = ClientMatch(name, rule.profile, f"ip {rule.ip}")
                families.add(rule.ip.version)
            elif rule.cidr is not None:
                net = rule.cidr
                networks = by_prefix.setdefault((net.version, net.prefixlen), {})
                networks[int(net.network_address)] = ClientMatch(name, rule.profile, f"cidr {net}")
                families.add(net.version)
        self._prefixes: dict[int, list[_Prefix]] = {4: [], 6: []}
        for (version, length), networks in sorted(by_prefix.items(), key=lambda kv: -kv[0][1]):
            bits = 32 if version == 4 else 128
            mask = ((1 << length) - 1) << (bits - length)
            self._prefixes[version].append(_Prefix(mask, networks))
        # source -> (canonical address text or None, verdict, the kind of rule it came from)
        self._cache: Memo[str, tuple[str | None, ClientMatch, str]] = Memo(_MAX_CACHE)
        # A source of one family may be a device that has rules of the other.
        self._look_across = {4: 6 in families, 6: 4 in families}
        # source -> (neighbour table generation, verdict)
        self._devices: Memo[str, tuple[int, ClientMatch]] = Memo(_MAX_CACHE)

    @property
    def default_profile(self) -> str:
        return self._default.profile

    def match(self, ip: str) -> ClientMatch:
        """The verdict for source address `ip` (any text; a non-address gets the default)."""
        entry = self._cache.get(ip)
        if entry is None:
            entry = self._cache.remember(ip, self._by_address(ip))
        key, verdict, by = entry
        neighbours = self._neighbours
        if neighbours is None or key is None:
            return verdict
        if self._by_mac:
            mac = neighbours.mac_of(key)
            if mac is not None:
                by_mac = self._by_mac.get(mac)
                if by_mac is not None:
                    return by_mac
        if by is _IP or not self._look_across[6 if ":" in key else 4]:
            return verdict  # an exact ip rule, or no rule of the other family
        known = self._devices.get(key)
        if known is not None and known[0] == neighbours.generation:
            return known[1]
        found = self._same_device(key, verdict, by, neighbours)
        self._devices.remember(key, (neighbours.generation, found))
        return found

    def match_mac(self, mac: str) -> ClientMatch | None:
        """The verdict of the `mac` rule for `mac` (any accepted spelling), or None."""
        try:
            return self._by_mac.get(normalize_mac(mac))
        except ValueError:
            return None

    def _same_device(
        self, key: str, verdict: ClientMatch, by: str, neighbours: Neighbours
    ) -> ClientMatch:
        """Steps 3 and 5: the rule of another address of the device `key` belongs to."""
        mac = neighbours.mac_of(key)
        if mac is None:
            return verdict
        networks: list[ClientMatch] = []
        for other in neighbours.addresses_of(mac):
            if other == key:
                continue
            _, found, other_by = self._cache.get(other) or self._by_address(other)
            if other_by is _IP:  # an exact ip rule of the same device
                return ClientMatch(found.name, found.profile, f"{found.how} (same device {mac})")
            if other_by is _CIDR:
                networks.append(found)
        if by is _CIDR or not networks:
            return verdict
        found = networks[0]
        return ClientMatch(found.name, found.profile, f"{found.how} (same device {mac})")

    def _by_address(self, ip: str) -> tuple[str | None, ClientMatch, str]:
        """(canonical address text or None, the verdict of the ip/cidr rules or the default, the
        kind of rule it came from)."""
        try:
            address = canonical_ip(ip)
        except ValueError:
            return None, self._default, _DEFAULT
        key = str(address)
        exact = self._by_ip.get(key)
        if exact is not None:
            return key, exact, _IP
        value = int(address)
        for prefix in self._prefixes[address.version]:
            found = prefix.networks.get(value & prefix.mask)
            if found is not None:
                return key, found, _CIDR
        return key, self._default, _DEFAULT
