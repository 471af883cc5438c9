"""Names the policy knows by heart: the bypass canaries and the search engines' safe hosts."""

from __future__ import annotations

import re

from filterdns.config import YouTube

CANARY_NAMES = ("use-application-dns.net",)  # Firefox: NXDOMAIN turns DNS over HTTPS off
RELAY_NAMES = ("mask.icloud.com", "mask-h2.icloud.com")  # iCloud Private Relay: NXDOMAIN
DDR_NAMES = ("_dns.resolver.arpa",)  # RFC 9462 discovery of encrypted DNS: NODATA
BYPASS_CATEGORY = "bypass"

SAFESEARCH_HOSTS = {
    "google": "forcesafesearch.google.com",
    "bing": "strict.bing.com",
    "duckduckgo": "safe.duckduckgo.com",
}
YOUTUBE_HOSTS = {
    YouTube.STRICT: "restrict.youtube.com",
    YouTube.MODERATE: "restrictmoderate.youtube.com",
}
# Every Google search domain: google.<cc>, google.co.<cc>, google.com.<cc> and google.com.
_GOOGLE = re.compile(r"(?:www\.)?google\.(?:com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})")
_BING = frozenset({"bing.com", "www.bing.com"})
_DUCKDUCKGO = frozenset({"duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com"})
_YOUTUBE = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "youtubei.googleapis.com",
        "youtube.googleapis.com",
        "www.youtube-nocookie.com",
    }
)


def safe_host(safesearch: bool, youtube: YouTube, name: str) -> str | None:
    """The safe host `name` is rewritten to (SafeSearch, YouTube restriction), or None."""
    if safesearch:
        if _GOOGLE.fullmatch(name):
            return SAFESEARCH_HOSTS["google"]
        if name in _BING:
            return SAFESEARCH_HOSTS["bing"]
        if name in _DUCKDUCKGO:
            return SAFESEARCH_HOSTS["duckduckgo"]
    if youtube in YOUTUBE_HOSTS and name in _YOUTUBE:
        return YOUTUBE_HOSTS[youtube]
    return None
