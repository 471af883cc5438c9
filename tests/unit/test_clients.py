"""Who is asking: MAC addresses from the neighbour table and the client rules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from filterdns.config import (
    ClientConfig,
    load_config_text,
    parse_client_ip,
    parse_client_network,
    parse_mac,
)
from filterdns.errors import ConfigError
from filterdns.policy.clients import ClientDirectory, ClientMatch
from filterdns.policy.neighbors import (
    Neighbours,
    NeighbourTable,
    canonical_ip,
    normalize_mac,
    parse_ip_neigh,
    parse_proc_arp,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "neighbors"

ARP_HEADER = "IP address       HW type     Flags       HW address            Mask     Device\n"


def _arp(*rows: tuple[str, str]) -> str:
    """A /proc/net/arp text with complete entries for (ip, mac) rows."""
    body = "".join(
        f"{ip:<16} 0x1         0x2         {mac}     *        eth0\n" for ip, mac in rows
    )
    return ARP_HEADER + body


def _write(path: Path, text: str) -> None:
    """Replace the sample neighbour file (a tiny synchronous write, fine inside a test)."""
    path.write_text(text)


def _read(path: Path) -> str:
    return path.read_text()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class IpNeigh:
    """A fake `ip neigh`: returns `text` and counts calls (one call per read)."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.text


# --- normalize_mac -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"),
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
        ("aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"),
        ("AABBCCDDEEFF", "aa:bb:cc:dd:ee:ff"),
        ("  aa:bb:cc:dd:ee:ff\n", "aa:bb:cc:dd:ee:ff"),
        ("a:b:c:d:e:f", "0a:0b:0c:0d:0e:0f"),
    ],
    ids=["colons", "upper", "dashes", "cisco-dots", "bare-hex", "whitespace", "single-digits"],
)
def test_normalize_mac_accepts_common_spellings(text: str, expected: str) -> None:
    assert normalize_mac(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "aa:bb:cc:dd:ee",
        "aa:bb:cc:dd:ee:ff:00",
        "aa:bb:cc:dd:ee:gg",
        "aa-bb:cc-dd:ee-ff",
        "aabb.ccdd",
        "aaa:bb:cc:dd:ee:ff",
        "aabbccddeef",
        "192.168.1.1",
    ],
    ids=[
        "empty",
        "five-bytes",
        "seven-bytes",
        "not-hex",
        "mixed-separators",
        "short-dotted",
        "three-digit-byte",
        "eleven-digits",
        "an-ip",
    ],
)
def test_normalize_mac_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a MAC address"):
        normalize_mac(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.5", "192.168.1.5"),
        ("::ffff:10.0.0.5", "10.0.0.5"),
        ("fe80::1%eth0", "fe80::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
    ],
    ids=["ipv4", "ipv4-mapped", "scope-id", "ipv6-compressed"],
)
def test_canonical_ip(text: str, expected: str) -> None:
    assert str(canonical_ip(text)) == expected


# --- parsers -----------------------------------------------------------------------------------


def test_parse_proc_arp_sample_keeps_complete_entries_and_counts_the_rest() -> None:
    sut = parse_proc_arp((DATA / "proc_net_arp.txt").read_text())
    assert sut.macs == {
        "192.168.1.1": "aa:bb:cc:00:00:01",
        "192.168.1.23": "aa:bb:cc:dd:ee:ff",
        "192.168.1.40": "aa:bb:cc:00:00:40",
        "10.6.1.7": "aa:bb:cc:06:01:07",
    }
    assert sut.incomplete == 2  # flags 0x0, all-zero MAC
    assert sut.skipped == 5  # bad MAC, bad IP, bad flags, short row, garbage


def test_parse_ip_neigh_sample_keeps_lladdr_entries_and_counts_the_rest() -> None:
    sut = parse_ip_neigh((DATA / "ip_neigh.txt").read_text())
    assert sut.macs == {
        "fe80::1": "aa:bb:cc:00:00:01",
        "2001:db8::23": "aa:bb:cc:dd:ee:ff",
        "192.168.1.5": "aa:bb:cc:00:00:05",
        "192.168.1.6": "aa:bb:cc:00:00:06",
        "10.0.0.5": "aa:bb:cc:00:00:0a",
    }
    assert sut.incomplete == 3  # FAILED, INCOMPLETE, FAILED with a stale lladdr
    assert sut.skipped == 4  # bad IP, lladdr without value, bad MAC, no lladdr in a live state


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_proc_arp, ""),
        (parse_proc_arp, ARP_HEADER),
        (parse_ip_neigh, ""),
        (parse_ip_neigh, "\n\n   \n"),
    ],
    ids=["arp-empty", "arp-header-only", "neigh-empty", "neigh-blank-lines"],
)
def test_parsers_on_empty_input(parse: Callable[[str], NeighbourTable], text: str) -> None:
    assert parse(text) == NeighbourTable({}, 0, 0)


def test_parsers_never_raise_on_binary_junk() -> None:
    junk = bytes(range(256)).decode("latin-1") * 4
    assert parse_proc_arp(junk).macs == {}
    assert parse_ip_neigh(junk).macs == {}


# --- Neighbours --------------------------------------------------------------------------------


@pytest.fixture
def arp_file(tmp_path: Path) -> Path:
    path = tmp_path / "arp"
    path.write_text(_arp(("192.168.1.23", "aa:bb:cc:dd:ee:ff")))
    return path


async def test_refresh_merges_both_sources_and_swaps(arp_file: Path) -> None:
    neigh = IpNeigh("fe80::1 dev eth0 lladdr aa:bb:cc:00:00:01 router REACHABLE\n")
    sut = Neighbours(arp_file, ip_neigh=neigh, clock=FakeClock())
    assert sut.mac_of("192.168.1.23") is None
    await sut.refresh()
    assert sut.mac_of("192.168.1.23") == "aa:bb:cc:dd:ee:ff"
    assert sut.mac_of("fe80::1%eth0") == "aa:bb:cc:00:00:01"
    assert sut.mac_of("::ffff:192.168.1.23") == "aa:bb:cc:dd:ee:ff"
    assert sut.generation == 1
    _write(arp_file, _arp(("192.168.1.24", "aa:bb:cc:dd:ee:ff")))
    await sut.refresh()
    assert sut.table == {"192.168.1.24": "aa:bb:cc:dd:ee:ff", "fe80::1": "aa:bb:cc:00:00:01"}
    assert sut.generation == 2
    await sut.refresh()
    assert sut.generation == 2, "an unchanged table keeps its generation"
    assert neigh.calls == 3


async def test_missing_sources_give_an_empty_table(tmp_path: Path) -> None:
    def broken() -> str:
        raise OSError("no ip command")

    sut = Neighbours(tmp_path / "absent", ip_neigh=broken, clock=FakeClock())
    await sut.refresh()
    assert sut.table == {}
    assert sut.mac_of("192.168.1.23") is None


async def test_refresh_records_parse_counts(arp_file: Path) -> None:
    _write(arp_file, _read(DATA / "proc_net_arp.txt"))
    neigh = IpNeigh(_read(DATA / "ip_neigh.txt"))
    sut = Neighbours(arp_file, ip_neigh=neigh, clock=FakeClock())
    await sut.refresh()
    assert (sut.skipped, sut.incomplete) == (9, 5)
    assert len(sut.table) == 9  # 4 from the arp file + 5 from ip neigh, no address shared


async def test_a_miss_rereads_at_most_once_per_second_per_address(arp_file: Path) -> None:
    clock = FakeClock()
    neigh = IpNeigh()
    sut = Neighbours(arp_file, ip_neigh=neigh, clock=clock, min_interval=1.0)
    await sut.refresh()
    assert neigh.calls == 1

    # A new device appears; the first miss flags a read, the answer now is still None.
    _write(
        arp_file, _arp(("192.168.1.23", "aa:bb:cc:dd:ee:ff"), ("192.168.1.77", "77:77:77:77:77:77"))
    )
    clock.now += 1.0
    assert sut.mac_of("192.168.1.77") is None
    assert sut.refresh_wanted
    assert await sut.refresh_if_wanted()
    assert neigh.calls == 2
    assert sut.mac_of("192.168.1.77") == "77:77:77:77:77:77"

    # An address that stays unknown: repeated misses within a second flag nothing.
    clock.now += 5.0
    start = clock.now
    assert sut.mac_of("192.168.1.99") is None
    assert await sut.refresh_if_wanted()
    assert neigh.calls == 3
    for offset in (0.1, 0.5, 0.9):
        clock.now = start + offset
        assert sut.mac_of("192.168.1.99") is None
        assert not sut.refresh_wanted
        assert not await sut.refresh_if_wanted()
    assert neigh.calls == 3


async def test_misses_of_many_addresses_share_one_read_per_interval(arp_file: Path) -> None:
    clock = FakeClock()
    neigh = IpNeigh()
    sut = Neighbours(arp_file, ip_neigh=neigh, clock=clock, min_interval=1.0)
    await sut.refresh()
    for last in range(100, 110):
        assert sut.mac_of(f"192.168.1.{last}") is None
    assert sut.refresh_delay() == 1.0  # the last read was just now
    assert not await sut.refresh_if_wanted()
    clock.now += 0.5
    assert sut.refresh_delay() == 0.5
    assert not await sut.refresh_if_wanted()
    clock.now += 0.5
    assert await sut.refresh_if_wanted()
    assert not await sut.refresh_if_wanted()
    assert neigh.calls == 2
    # The same address again, a second later: flags again (the device may have appeared).
    clock.now += 1.0
    assert sut.mac_of("192.168.1.100") is None
    assert await sut.refresh_if_wanted()
    assert neigh.calls == 3


async def test_a_hit_flags_nothing(arp_file: Path) -> None:
    sut = Neighbours(arp_file, ip_neigh=IpNeigh(), clock=FakeClock())
    await sut.refresh()
    assert sut.mac_of("192.168.1.23") == "aa:bb:cc:dd:ee:ff"
    assert sut.mac_of("not an address") is None
    assert not sut.refresh_wanted
    assert sut.refresh_delay() is None


async def test_run_refreshes_on_a_miss_in_the_background(arp_file: Path) -> None:
    neigh = IpNeigh()
    sut = Neighbours(arp_file, ip_neigh=neigh, min_interval=0.05)
    task = asyncio.create_task(sut.run(interval=60.0))
    try:
        await _until(lambda: neigh.calls == 1)
        _write(arp_file, _arp(("192.168.1.80", "80:80:80:80:80:80")))
        assert sut.mac_of("192.168.1.80") is None
        await _until(lambda: sut.mac_of("192.168.1.80") is not None)
        assert sut.mac_of("192.168.1.80") == "80:80:80:80:80:80"
        assert neigh.calls == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_run_refreshes_on_its_interval(arp_file: Path) -> None:
    neigh = IpNeigh()
    sut = Neighbours(arp_file, ip_neigh=neigh)
    task = asyncio.create_task(sut.run(interval=0.02))
    try:
        await _until(lambda: neigh.calls >= 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


# --- ClientDirectory ---------------------------------------------------------------------------


def rule(
    name: str,
    profile: str,
    *,
    ip: str | None = None,
    cidr: str | None = None,
    mac: str | None = None,
) -> ClientConfig:
    """A `clients:` entry as the configuration reads it."""
    return ClientConfig(
        name,
        profile,
        ip=None if ip is None else parse_client_ip(ip),
        cidr=None if cidr is None else parse_client_network(cidr),
        mac=None if mac is None else parse_mac(mac),
    )


RULES = [
    rule("minh-tablet", "minh", mac="AA-BB-CC-DD-EE-FF"),
    rule("minh-laptop", "minh", ip="192.168.1.23"),
    rule("shared-pc", "family", ip="192.168.1.30"),
    rule("home", "family", cidr="192.168.0.0/16"),
    rule("kids-wifi", "kids", cidr="192.168.1.0/24"),
    rule("room-6a", "class-6a", cidr="10.6.1.0/24"),
    rule("v6-lan", "family", cidr="fd00::/8"),
    rule("v6-kids", "kids", cidr="fd00:1::/32"),
    rule("router6", "family", ip="fe80::1"),
]


async def _directory(arp_rows: list[tuple[str, str]], tmp_path: Path) -> ClientDirectory:
    arp = tmp_path / "arp"
    _write(arp, _arp(*arp_rows))
    neighbours = Neighbours(arp, ip_neigh=IpNeigh(), clock=FakeClock())
    await neighbours.refresh()
    return ClientDirectory(RULES, "guests", neighbours)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("192.168.1.30", ClientMatch("minh-tablet", "minh", "mac aa:bb:cc:dd:ee:ff")),
        ("192.168.1.23", ClientMatch("minh-laptop", "minh", "ip 192.168.1.23")),
        ("192.168.1.31", ClientMatch("kids-wifi", "kids", "cidr 192.168.1.0/24")),
        ("192.168.7.1", ClientMatch("home", "family", "cidr 192.168.0.0/16")),
        ("10.6.1.200", ClientMatch("room-6a", "class-6a", "cidr 10.6.1.0/24")),
        ("::ffff:10.6.1.5", ClientMatch("room-6a", "class-6a", "cidr 10.6.1.0/24")),
        ("::ffff:192.168.1.23", ClientMatch("minh-laptop", "minh", "ip 192.168.1.23")),
        ("fe80::1%eth0", ClientMatch("router6", "family", "ip fe80::1")),
        ("fd00:1::5", ClientMatch("v6-kids", "kids", "cidr fd00:1::/32")),
        ("fd12::5", ClientMatch("v6-lan", "family", "cidr fd00::/8")),
        ("10.6.2.1", ClientMatch(None, "guests", "default")),
        ("8.8.8.8", ClientMatch(None, "guests", "default")),
        ("2001:db8::1", ClientMatch(None, "guests", "default")),
        ("not-an-ip", ClientMatch(None, "guests", "default")),
        ("", ClientMatch(None, "guests", "default")),
    ],
    ids=[
        "mac-beats-exact-ip",
        "exact-ip",
        "longest-cidr-24-over-16",
        "only-the-16",
        "cidr",
        "ipv4-mapped-cidr",
        "ipv4-mapped-exact-ip",
        "scope-id-stripped",
        "v6-longest-cidr",
        "v6-shorter-cidr",
        "v4-no-rule",
        "v4-outside",
        "v6-outside",
        "garbage",
        "empty",
    ],
)
async def test_most_specific_rule_wins(ip: str, expected: ClientMatch, tmp_path: Path) -> None:
    sut = await _directory([("192.168.1.30", "aa:bb:cc:dd:ee:ff")], tmp_path)
    assert sut.match(ip) == expected
    assert sut.match(ip) == expected, "the cached answer is the same"


def test_without_neighbours_mac_rules_are_ignored() -> None:
    sut = ClientDirectory(RULES, "guests")
    assert sut.match("192.168.1.30") == ClientMatch("shared-pc", "family", "ip 192.168.1.30")
    assert sut.default_profile == "guests"


def test_match_mac_for_explain() -> None:
    sut = ClientDirectory(RULES, "guests")
    assert sut.match_mac("aabb.ccdd.eeff") == ClientMatch(
        "minh-tablet", "minh", "mac aa:bb:cc:dd:ee:ff"
    )
    assert sut.match_mac("11:22:33:44:55:66") is None
    assert sut.match_mac("nonsense") is None


async def test_a_mac_moving_to_a_new_ip_is_followed_after_a_refresh(tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    _write(arp, _arp(("192.168.1.30", "aa:bb:cc:dd:ee:ff")))
    neighbours = Neighbours(arp, ip_neigh=IpNeigh(), clock=FakeClock())
    await neighbours.refresh()
    sut = ClientDirectory(RULES, "guests", neighbours)
    assert sut.match("192.168.1.30").profile == "minh"
    assert sut.match("192.168.1.44").how == "cidr 192.168.1.0/24"

    _write(arp, _arp(("192.168.1.44", "aa:bb:cc:dd:ee:ff")))
    await neighbours.refresh()
    assert sut.match("192.168.1.44") == ClientMatch("minh-tablet", "minh", "mac aa:bb:cc:dd:ee:ff")
    assert sut.match("192.168.1.30") == ClientMatch("shared-pc", "family", "ip 192.168.1.30")


async def test_an_unknown_address_keeps_asking_the_neighbour_table(tmp_path: Path) -> None:
    clock = FakeClock()
    arp = tmp_path / "arp"
    _write(arp, _arp())
    neighbours = Neighbours(arp, ip_neigh=IpNeigh(), clock=clock)
    await neighbours.refresh()
    sut = ClientDirectory(RULES, "guests", neighbours)
    assert sut.match("10.9.9.9").how == "default"
    assert neighbours.refresh_wanted, "a miss on a client with MAC rules asks for a read"
    _write(arp, _arp(("10.9.9.9", "aa:bb:cc:dd:ee:ff")))
    clock.now += 1.0
    assert await neighbours.refresh_if_wanted()
    assert sut.match("10.9.9.9").profile == "minh", "the cached default did not stick"


PROFILES = "profiles: {p: {age_band: adult}, q: {age_band: adult}}\n"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["{name: a, profile: p}"], "clients[1]: needs one of ip, cidr or mac"),
        (
            ["{name: b, profile: p, ip: 10.0.0.1, mac: 'aa:bb:cc:dd:ee:ff'}"],
            "clients[1]: has ip and mac; give exactly one of ip, cidr or mac",
        ),
        (["{name: c, profile: p, ip: 10.0.0.256}"], 'clients[1].ip: "10.0.0.256" is not an IP'),
        (
            ["{name: e, profile: p, cidr: 10.0.0.0/33}"],
            'clients[1].cidr: "10.0.0.0/33" is not an IP address or network',
        ),
        (["{name: f, profile: p, mac: 'aa:bb:cc'}"], 'clients[1].mac: "aa:bb:cc" is not a MAC'),
        (["{name: g, profile: '', ip: 10.0.0.1}"], "clients[1].profile: is empty"),
        (["{profile: p, ip: nope}"], 'clients[1].ip: "nope" is not an IP address'),
        (
            ["{name: a, profile: p, ip: 10.0.0.1}", "{name: b, profile: q, ip: '::ffff:10.0.0.1'}"],
            'clients[2].ip: "10.0.0.1" is already the ip of clients[1]',
        ),
        (
            ["{name: a, profile: p, mac: 'aa:bb:cc:dd:ee:ff'}", "{name: b, profile: q, "
             "mac: AABB.CCDD.EEFF}"],
            'clients[2].mac: "aa:bb:cc:dd:ee:ff" is already the mac of clients[1]',
        ),
        (
            ["{name: a, profile: p, cidr: 10.6.0.0/16}",
             "{name: b, profile: q, cidr: 10.6.0.0/16}"],
            'clients[2].cidr: "10.6.0.0/16" is already the cidr of clients[1]',
        ),
    ],
    ids=[
        "none", "two", "bad-ip", "bad-prefix", "bad-mac", "no-profile", "unnamed",
        "ip-in-two-spellings", "mac-in-two-spellings", "cidr",
    ],
)  # fmt: skip
def test_rules_the_directory_could_not_use_are_refused_with_the_file(
    entries: list[str], message: str
) -> None:
    """The directory takes the rules as the configuration read them: a rule without exactly one
    good address, without a profile, or repeating another's address never reaches it."""
    rules = "".join(
        f"  - {entry}\n" for entry in ["{name: ok, profile: p, ip: 192.0.2.1}", *entries]
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"{PROFILES}clients:\n{rules}")
    assert message in str(caught.value)


def test_ipv4_mapped_cidr_rule_counts_as_ipv4() -> None:
    sut = ClientDirectory([rule("lab", "p", cidr="::ffff:10.1.0.0/112")], "guests")
    assert sut.match("10.1.2.3") == ClientMatch("lab", "p", "cidr 10.1.0.0/16")


def test_the_cache_is_bounded() -> None:
    sut = ClientDirectory(RULES, "guests")
    for i in range(70000):
        sut.match(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    assert len(sut._cache) <= 65536


def test_an_address_among_100_cidr_rules_costs_a_probe_per_prefix_length_and_is_remembered() -> (
    None
):
    """What keeps matching cheap, checked as behaviour (the speed itself is bench/'s to measure):
    100 rules of 9 prefix lengths are 9 probes, longest first; an address seen is remembered."""
    rules = [rule(f"net{i}", "p", cidr=f"10.{i}.0.0/{16 + i % 9}") for i in range(100)]
    sut = ClientDirectory(rules, "guests")
    assert sut.match("10.5.0.1").how == "cidr 10.5.0.0/21"
    lengths = [bin(prefix.mask).count("1") for prefix in sut._prefixes[4]]
    assert lengths == list(range(24, 15, -1))
    assert sum(len(prefix.networks) for prefix in sut._prefixes[4]) == 100
    addresses = [f"172.16.{i >> 8}.{i & 255}" for i in range(2000)]
    assert {sut.match(ip).how for ip in addresses} == {"default"}
    assert all(ip in sut._cache for ip in addresses)
    assert ClientDirectory(rules, "guests").match("10.97.1.9").how == "cidr 10.97.0.0/23"


# --- one device, one profile on IPv4 and IPv6 ---------------------------------------------------

DUAL_STACK = [
    rule("minh-laptop", "minh", ip="192.168.1.23"),
    rule("room-6a", "class-6a", cidr="10.6.1.0/24"),
    rule("v6-kids", "kids", cidr="fd00:1::/32"),
    rule("tv", "family", ip="2001:db8:1::77"),
]


async def _dual_stack(text: str | None = None) -> tuple[ClientDirectory, Neighbours, IpNeigh]:
    ip_neigh = IpNeigh(text if text is not None else _read(DATA / "dual_stack_neigh.txt"))
    neighbours = Neighbours(Path("/nonexistent/arp"), ip_neigh=ip_neigh, clock=FakeClock())
    await neighbours.refresh()
    return ClientDirectory(DUAL_STACK, "guests", neighbours), neighbours, ip_neigh


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        pytest.param("2001:db8:1::23", ClientMatch(
            "minh-laptop", "minh", "ip 192.168.1.23 (same device 02:00:00:00:00:23)"),
            id="ipv6-of-an-ipv4-ip-rule"),
        pytest.param("fe80::23%wlan0", ClientMatch(
            "minh-laptop", "minh", "ip 192.168.1.23 (same device 02:00:00:00:00:23)"),
            id="link-local-too"),
        pytest.param("2001:db8:6::40", ClientMatch(
            "room-6a", "class-6a", "cidr 10.6.1.0/24 (same device 02:00:00:00:06:40)"),
            id="ipv6-of-a-classroom-subnet"),
        pytest.param("fd00:1::41", ClientMatch("v6-kids", "kids", "cidr fd00:1::/32"),
                     id="its-own-ipv6-network-first"),
        pytest.param("192.168.1.77", ClientMatch(
            "tv", "family", "ip 2001:db8:1::77 (same device 02:00:00:00:00:77)"),
            id="ipv4-of-an-ipv6-ip-rule"),
        pytest.param("2001:db8:9::99", ClientMatch(None, "guests", "default"),
                     id="a-device-with-no-rule"),
        pytest.param("2001:db8:1::50", ClientMatch(None, "guests", "default"),
                     id="not-in-the-table"),
    ],
)  # fmt: skip
async def test_a_rule_for_one_address_of_a_device_covers_its_others(
    ip: str, expected: ClientMatch
) -> None:
    sut, _neighbours, _ip_neigh = await _dual_stack()
    assert sut.match(ip) == expected
    assert sut.match(ip) == expected, "the remembered answer is the same"


async def test_a_new_ipv6_address_of_a_device_is_followed_after_a_refresh() -> None:
    sut, neighbours, ip_neigh = await _dual_stack()
    assert sut.match("2001:db8:1::abcd").how == "default"
    assert neighbours.refresh_wanted, "an unknown IPv6 source asks for a read"
    ip_neigh.text += "2001:db8:1::abcd dev wlan0 lladdr 02:00:00:00:00:23 REACHABLE\n"
    await neighbours.refresh()
    assert sut.match("2001:db8:1::abcd").profile == "minh"


async def test_without_rules_of_the_other_family_the_table_is_not_asked() -> None:
    ip_neigh = IpNeigh(_read(DATA / "dual_stack_neigh.txt"))
    neighbours = Neighbours(Path("/nonexistent/arp"), ip_neigh=ip_neigh, clock=FakeClock())
    await neighbours.refresh()
    sut = ClientDirectory([rule("pc", "minh", ip="192.168.1.23")], "guests", neighbours)
    assert sut.match("10.9.9.9").how == "default"
    assert not neighbours.refresh_wanted
    assert sut.match("2001:db8:1::23").profile == "minh"


async def test_addresses_of_a_device_come_from_the_table() -> None:
    _sut, neighbours, _ip_neigh = await _dual_stack()
    assert neighbours.addresses_of("02:00:00:00:00:23") == (
        "192.168.1.23", "2001:db8:1::23", "fe80::23",
    )  # fmt: skip
    assert neighbours.addresses_of("02:00:00:00:00:50") == ()
