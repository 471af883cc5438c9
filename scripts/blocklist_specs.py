"""What each shipped category list is made of: upstream repositories, input files, remote URLs.

Used by build_blocklists.py; blocklists/SOURCES.md explains every choice (licences, mapping,
which sources ship and which are remote).
"""

from __future__ import annotations

from dataclasses import dataclass

# The categories whose sources all ship (when their licence allows): a fresh, offline install
# is what protects a child on its first day, so adult, gambling and bypass ship everything the
# pinned data holds. Every other source ships when it has at most SHIP_LIMIT names.
SHIP_ALL = frozenset({"adult", "gambling", "bypass"})
SHIP_LIMIT = 50_000

UT1_RAW = "https://raw.githubusercontent.com/olbat/ut1-blacklists/master/blacklists"
STEVENBLACK_URL = "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts"
DIBDOT_URL = (
    "https://raw.githubusercontent.com/dibdot/DoH-IP-blocklists/master/doh-domains_overall.txt"
)
SHADOW_RAW = "https://raw.githubusercontent.com/ShadowWhisperer/BlockLists/master/Lists"
CC_BY_SA = "CC BY-SA 4.0"
CC_BY_SA_URL = "https://creativecommons.org/licenses/by-sa/4.0/"


@dataclass(frozen=True)
class Upstream:
    """A public repository at the pinned commit the data was copied from."""

    name: str
    repo: str
    commit: str
    date: str  # YYYY-MM-DD, the date of the pinned commit
    licence: str
    notice: str  # the attribution a shipped file carries
    share_alike: bool = False  # adaptations are shared under CC BY-SA 4.0


UT1_NOTICE = f"UT1 blacklists by Fabrice Prigent, Universite Toulouse Capitole: {CC_BY_SA}"
UT1_COMMIT = "804da92a9177149204d9a3d0c4ab5bd1cafe120d"
UT1 = Upstream("UT1", "olbat/ut1-blacklists", UT1_COMMIT, "2026-08-17", CC_BY_SA, UT1_NOTICE, True)
# UT1 malware/ and phishing/ domains were copied from the newest commit that still held them.
UT1_2025 = Upstream(
    "UT1",
    "olbat/ut1-blacklists",
    "c6387984350c74578d8bd9cb85ce6b828229a55b",
    "2025-07-13",
    CC_BY_SA,
    UT1_NOTICE,
    True,
)
SINFONIETTA = Upstream(
    "Sinfonietta",
    "Sinfonietta/hostfiles",
    "62631ce2ee373595bbc187623aa5bb7f7a1ad534",
    "2026-04-23",
    "MIT",
    "Sinfonietta hostfiles, Copyright (c) 2016 Sinfonietta: MIT (text in SOURCES.md)",
)
STEVENBLACK = Upstream(
    "StevenBlack",
    "hagezi/dns-blocklists",  # StevenBlack/hosts version 2022-07-19, as mirrored there
    "afbe2b5a019568b8e0978fa438f4e18715bfb4c3",
    "2022-07-22",
    "MIT",
    "StevenBlack/hosts, Copyright (c) Steven Black: MIT (text in SOURCES.md)",
)
DIBDOT = Upstream(
    "dibdot",
    "dibdot/DoH-IP-blocklists",
    "1089851d4c04703d7320a44074130ecc6d2647c5",
    "2026-08-22",
    "GPL-3.0",
    "dibdot/DoH-IP-blocklists by Dirk Brenken: GPL-3.0 (never shipped)",
)
SHADOW = Upstream(
    "ShadowWhisperer",
    "ShadowWhisperer/BlockLists",
    "2d65ab5791514976c1f6c6131af5a72d59defb12",
    "2026-08-22",
    "Unlicense",
    "ShadowWhisperer/BlockLists: Unlicense (public domain)",
)
NEXTDNS = Upstream(
    "NextDNS",
    "nextdns/dns-bypass-methods",
    "58c57dbc42970c759c7b0744f5fd3ceb01519dc6",
    "2023-01-20",
    "MIT",
    "nextdns/dns-bypass-methods, Copyright (c) 2022 NextDNS: MIT (text in SOURCES.md)",
)
V2FLY = Upstream(
    "v2fly",
    "v2fly/domain-list-community",
    "c975ccef9c19f005a3bfa7a33255d1b406deea64",
    "2026-08-19",
    "MIT",
    "v2fly/domain-list-community, Copyright (c) 2018-2019 V2Ray: MIT (text in SOURCES.md)",
)
CURBENGH = Upstream(
    "curbengh",
    "curbengh/vn-badsite-filter",
    "086ab0c2c83e8614d27f46d54b254791b81fd399",
    "2025-03-29",
    "MIT + CC0 1.0",
    "vn-badsite-filter, Copyright (c) 2023 Ming Di Leom: MIT; data chongluadao.vn: CC0 1.0",
)
JUSTDOMAINS = Upstream(
    "justdomains",
    "justdomains/blocklists",
    "bbab06cd3738c373b725470214fc187cda834655",
    "2022-10-03",
    "CC BY-SA 3.0 (or GPL-3.0)",
    "EasyList and EasyPrivacy by The EasyList authors (https://easylist.to/), as domains by "
    "justdomains: CC BY-SA 3.0, adapted under CC BY-SA 4.0",
    True,
)


@dataclass(frozen=True)
class Input:
    """One file of the data directory, optionally filtered."""

    upstream: Upstream
    path: str  # relative to --data
    label: str  # how SOURCES.md and the file header name it
    v2fly: bool = False  # a v2fly data file: its includes are followed, patterns skipped
    exclude_attrs: frozenset[str] = frozenset()  # v2fly rules tagged so are left out
    only: tuple[str, ...] = ()  # keep only these names and their subdomains
    drop: tuple[str, ...] = ()  # leave out these names and their subdomains


def ut1(category: str, upstream: Upstream = UT1) -> Input:
    return Input(upstream, f"ut1/{category}/domains", f"UT1 {category}")


def sinfonietta(name: str) -> Input:
    return Input(SINFONIETTA, f"sinfonietta/{name}", f"Sinfonietta {name}")


def shadow(name: str) -> Input:
    return Input(SHADOW, f"shadowwhisperer-blocklists/{name}", f"ShadowWhisperer {name}")


def nextdns(name: str, only: tuple[str, ...] = ()) -> Input:
    return Input(NEXTDNS, f"nextdns-dns-bypass-methods/{name}", f"NextDNS {name}", only=only)


def v2fly(name: str, label: str = "", only: tuple[str, ...] = ()) -> Input:
    return Input(
        V2FLY,
        f"v2fly-domain-list-community/data/{name}",
        f"v2fly {label or name}",
        v2fly=True,
        exclude_attrs=frozenset({"ads"}),  # an ad server of a service is no bypass or porn
        only=only,
    )


def justdomains(name: str) -> Input:
    return Input(
        JUSTDOMAINS, f"justdomains-blocklists/{name}-justdomains.txt", f"justdomains {name}"
    )


STEVENBLACK_HOSTS = Input(
    STEVENBLACK, "stevenblack-unified_via-hagezi/stevenblack.hosts.txt", "StevenBlack unified"
)
DIBDOT_DOH = Input(DIBDOT, "dibdot-doh/doh-domains_overall.txt", "dibdot doh-domains_overall")
VN_BADSITE = Input(
    CURBENGH,
    "curbengh-vn-badsite-filter/vn-badsite-filter-domains.txt",
    "curbengh vn-badsite-filter",
)


@dataclass(frozen=True)
class Remote:
    """A source filterdns downloads instead of shipping."""

    url: str
    label: str
    upstream: Upstream
    snapshot: Input | None  # its copy in the data directory, when there is one
    note: str = ""


@dataclass(frozen=True)
class Spec:
    """How one category is made: shipped inputs and remote sources."""

    inputs: tuple[Input, ...] = ()
    # (a, b): ship the names of `a` that `b` lists too: a small, corroborated offline floor for
    # categories whose real sources are all too big to ship.
    corroborated: tuple[tuple[Input, Input], ...] = ()
    remote: tuple[Remote, ...] = ()
    # Names these inputs list (or a parent of) are left out of the corroborated floor.
    floor_minus: tuple[Input, ...] = ()


UT1_ADULT_PARTS = tuple(
    Remote(
        f"{UT1_RAW}/adult/domains.{part}",
        f"UT1 adult (part {part})",
        UT1,
        None,
        "" if part else "parts 0-2: about 4.5 million names, not in the pinned snapshot",
    )
    for part in range(3)
)
UT1_MALWARE = Remote(
    f"{UT1_RAW}/malware/domains", "UT1 malware", UT1_2025, ut1("malware", UT1_2025)
)
UT1_PHISHING = Remote(
    f"{UT1_RAW}/phishing/domains", "UT1 phishing", UT1_2025, ut1("phishing", UT1_2025)
)
STEVENBLACK_REMOTE = Remote(
    STEVENBLACK_URL,
    "StevenBlack unified",
    STEVENBLACK,
    STEVENBLACK_HOSTS,
    "ads + trackers + malware",
)
DIBDOT_REMOTE = Remote(
    DIBDOT_URL, "dibdot doh-domains_overall", DIBDOT, DIBDOT_DOH, "GPL-3.0: never shipped"
)
SHADOW_TRACKING = shadow("Tracking")
SHADOW_TRACKING_REMOTE = Remote(
    f"{SHADOW_RAW}/Tracking", "ShadowWhisperer Tracking", SHADOW, SHADOW_TRACKING
)

# The ad and tracker lists proper (not StevenBlack's, which mixes in malware): a name one of
# them lists is an ad or tracker name, never `malware` or `phishing`.
AD_LISTS = (justdomains("easylist"), justdomains("easyprivacy"), shadow("Ads"), SHADOW_TRACKING)

# NextDNS `browsers`: the browsers whose own service is a VPN, proxy or Tor; not the browser
# vendors' main sites (opera.com), nor the Firefox canary (the policy answers it itself).
BYPASS_BROWSERS = ("epicbrowser.com", "tenta.com", "tor.bravesoftware.com", "ur-browser.com")
# v2fly `protonmail`: Proton VPN only (Proton Mail stays reachable).
PROTON_VPN = ("protonvpn.com", "protonvpn.ch", "protonvpn.net")
# v2fly `cloudflare`: the WARP client and 1.1.1.1 app only, never the rest of Cloudflare.
CLOUDFLARE_WARP = ("cloudflareclient.com", "cloudflarewarp.com", "warp.plus", "one.one.one")

SPECS: dict[str, Spec] = {
    "adult": Spec(
        (
            ut1("mixed_adult"),
            ut1("lingerie"),
            sinfonietta("pornography-hosts"),
            shadow("Adult"),
            v2fly("category-porn"),
        ),
        remote=UT1_ADULT_PARTS,
    ),
    "gambling": Spec(
        (ut1("gambling"), ut1("arjel"), sinfonietta("gambling-hosts"), shadow("Gambling"))
    ),
    "dating": Spec((ut1("dating"),)),
    "drugs": Spec((ut1("drogue"),)),
    "violence": Spec((ut1("agressif"), ut1("dangerous_material"), sinfonietta("snuff-hosts"))),
    "social": Spec((ut1("social_networks"), sinfonietta("social-hosts"))),
    "chat": Spec((ut1("chat"),)),
    "games": Spec((ut1("games"),)),
    "video": Spec((ut1("audio-video"),)),
    "bypass": Spec(
        (
            ut1("vpn"),
            ut1("doh"),
            ut1("residential-proxies"),
            ut1("redirector"),
            shadow("Tunnels"),
            shadow("Wild_Tunnel"),
            shadow("DNS"),
            nextdns("vpn"),
            nextdns("proxies"),
            nextdns("tor"),
            nextdns("encrypted-dns"),
            nextdns("apple-private-relay"),
            nextdns("browsers", only=BYPASS_BROWSERS),
            nextdns("linux"),
            v2fly("category-anticensorship"),
            v2fly("torproject"),
            v2fly("category-doh"),
            v2fly("protonmail", "protonmail (Proton VPN names only)", PROTON_VPN),
            v2fly("cloudflare", "cloudflare (WARP names only)", CLOUDFLARE_WARP),
        ),
        remote=(DIBDOT_REMOTE,),
    ),
    "malware": Spec(
        corroborated=((ut1("malware", UT1_2025), STEVENBLACK_HOSTS),),
        remote=(UT1_MALWARE,),
        floor_minus=AD_LISTS,
    ),
    "phishing": Spec(
        (VN_BADSITE, shadow("Scam")),
        corroborated=((ut1("phishing", UT1_2025), STEVENBLACK_HOSTS),),
        remote=(UT1_PHISHING,),
        floor_minus=AD_LISTS,
    ),
    "piracy": Spec((ut1("warez"),)),
    "cryptojacking": Spec((ut1("cryptojacking"),)),
    "stalkerware": Spec((ut1("stalkerware"),)),
    "ads": Spec(
        (justdomains("easylist"), justdomains("easyprivacy"), shadow("Ads")),
        remote=(SHADOW_TRACKING_REMOTE, STEVENBLACK_REMOTE),
    ),
}
