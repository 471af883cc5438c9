"""The default categories and their list sources: files shipped in the package, remote URLs.

Every category has one shipped file, `blocklists/<category>.txt` (`.txt.gz` when it is big), so
a fresh install filters offline from its first query; adult, gambling and bypass ship every
source the licences allow. Sources not shipped (UT1 adult, malware and phishing, StevenBlack's
unified hosts and ShadowWhisperer's trackers for `ads`, the GPL-3.0 DoH list) are remote: they
are downloaded on the first refresh and then every `lists.refresh`. `never-block.txt` holds the
names no category blocks (read as allow entries for every category). Origins, licences, the category
mapping and the counts are in `blocklists/SOURCES.md`; `scripts/build_blocklists.py`
regenerates the shipped files and checks that this manifest matches what it builds.
"""

from __future__ import annotations

from pathlib import Path

from filterdns.config import (
    DEFAULT_CATEGORIES,
    MODEL_CATEGORIES,
    NEVER_BLOCK_CATEGORY,
    SHIPPED_PREFIX,
)

# The repository's top-level blocklists/, which the package reaches as its own blocklists/ (a
# link in a checkout; wheels copy the files in as package data).
SHIPPED_DIR: Path = Path(__file__).parent.parent / "blocklists"

CATEGORIES: tuple[str, ...] = tuple(c for c in DEFAULT_CATEGORIES if c not in MODEL_CATEGORIES)
"""The default categories with a shipped file, from the content concerns to the security ones
(the name model's categories have none: lists.namemodel answers for them)."""

_UT1 = "https://raw.githubusercontent.com/olbat/ut1-blacklists/master/blacklists"


def _file(category: str, packed: bool = False) -> str:
    """The shipped source of `category`: "shipped:<category>.txt" (".txt.gz" when packed)."""
    return f"{SHIPPED_PREFIX}{category}.txt" + (".gz" if packed else "")


_SHADOW = "https://raw.githubusercontent.com/ShadowWhisperer/BlockLists/master/Lists"
_STEVENBLACK = "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts"

SHIPPED: dict[str, tuple[str, ...]] = {
    "adult": (
        _file("adult", packed=True),
        f"{_UT1}/adult/domains.0",
        f"{_UT1}/adult/domains.1",
        f"{_UT1}/adult/domains.2",
    ),
    "gambling": (_file("gambling"),),
    "dating": (_file("dating"),),
    "drugs": (_file("drugs"),),
    "violence": (_file("violence"),),
    "social": (_file("social"),),
    "chat": (_file("chat"),),
    "games": (_file("games"),),
    "video": (_file("video"),),
    "bypass": (
        _file("bypass", packed=True),
        "https://raw.githubusercontent.com/dibdot/DoH-IP-blocklists/master/doh-domains_overall.txt",
    ),
    "malware": (_file("malware"), f"{_UT1}/malware/domains"),
    "phishing": (_file("phishing"), f"{_UT1}/phishing/domains"),
    "piracy": (_file("piracy"),),
    "cryptojacking": (_file("cryptojacking"),),
    "stalkerware": (_file("stalkerware"),),
    # Ads and trackers: no age band blocks them; a profile adds `ads` to its categories.
    "ads": (_file("ads", packed=True), f"{_SHADOW}/Tracking", _STEVENBLACK),
}
"""Category -> its sources: "shipped:<file>" for a file of SHIPPED_DIR, else an https:// URL."""


NEVER_BLOCK_SOURCE = f"{SHIPPED_PREFIX}{NEVER_BLOCK_CATEGORY}.txt"
"""The shipped never-block list (reviewed names no category blocks), read by every build."""


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
