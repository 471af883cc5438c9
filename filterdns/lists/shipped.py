"""The default categories and their list sources: files shipped in the package, remote URLs.

Every category has one shipped file, `blocklists/<category>.txt`, so a fresh install
filters offline from its first query. Sources too large to ship (UT1 adult, malware, phishing
and redirector, StevenBlack's unified hosts) and the GPL-3.0 DoH list are remote: they are
downloaded on the first refresh and then every `lists.refresh`. Origins, licences, the category
mapping and the counts are in `blocklists/SOURCES.md`; `scripts/build_blocklists.py`
regenerates the shipped files and checks that this manifest matches what it builds.
"""

from __future__ import annotations

from pathlib import Path

from filterdns.config import DEFAULT_CATEGORIES

# The repository's top-level blocklists/, which the package reaches as its own blocklists/ (a
# link in a checkout; wheels copy the files in as package data).
SHIPPED_DIR: Path = Path(__file__).parent.parent / "blocklists"
SHIPPED_PREFIX = "shipped:"

CATEGORIES: tuple[str, ...] = DEFAULT_CATEGORIES  # one list, kept by the configuration
"""The default categories, from the content concerns to the security ones."""

_UT1 = "https://raw.githubusercontent.com/olbat/ut1-blacklists/master/blacklists"

SHIPPED: dict[str, tuple[str, ...]] = {
    "adult": (
        "shipped:adult.txt",
        f"{_UT1}/adult/domains.0",
        f"{_UT1}/adult/domains.1",
        f"{_UT1}/adult/domains.2",
    ),
    "gambling": ("shipped:gambling.txt",),
    "dating": ("shipped:dating.txt",),
    "drugs": ("shipped:drugs.txt",),
    "violence": ("shipped:violence.txt",),
    "social": ("shipped:social.txt",),
    "chat": ("shipped:chat.txt",),
    "games": ("shipped:games.txt",),
    "video": ("shipped:video.txt",),
    "bypass": (
        "shipped:bypass.txt",
        f"{_UT1}/redirector/domains",
        "https://raw.githubusercontent.com/dibdot/DoH-IP-blocklists/master/doh-domains_overall.txt",
    ),
    "malware": (
        "shipped:malware.txt",
        f"{_UT1}/malware/domains",
        "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts",
    ),
    "phishing": (
        "shipped:phishing.txt",
        f"{_UT1}/phishing/domains",
    ),
    "piracy": ("shipped:piracy.txt",),
    "cryptojacking": ("shipped:cryptojacking.txt",),
    "stalkerware": ("shipped:stalkerware.txt",),
}
"""Category -> its sources: "shipped:<file>" for a file of SHIPPED_DIR, else an https:// URL."""


def shipped_path(source: str) -> Path:
    """The file of a shipped source: "shipped:gambling.txt" -> SHIPPED_DIR / "gambling.txt".

    Raises ValueError for a source that is not "shipped:" followed by a plain file name.
    """
    if not source.startswith(SHIPPED_PREFIX):
        raise ValueError(f"{source!r} is not a shipped source ({SHIPPED_PREFIX}<file>)")
    name = source[len(SHIPPED_PREFIX) :]
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise ValueError(f"{source!r}: a shipped source names one file of {SHIPPED_DIR}")
    return SHIPPED_DIR / name
