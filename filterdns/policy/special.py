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
# The hosts that serve search results, rewritten to the engines' safe hosts. Each set follows
# the vendor's documentation of DNS-enforced SafeSearch, plus the few hosts that serve the same
# results from the same front ends; nothing else is rewritten (a CNAME to a safe host that does
# not serve a site would break it).
#
# Google ("Lock SafeSearch for devices & networks you manage", support.google.com/websearch/
# answer/186669): www.google.com and every Google country domain the network uses, as a CNAME to
# forcesafesearch.google.com. Every search domain is google.com, google.<cc>, google.co.<cc> or
# google.com.<cc> (google.com/supported_domains), with or without www.; images.google.<domain>
# serves image search and encrypted.google.com served the encrypted search, both from the same
# front ends, so they are rewritten too.
_GOOGLE = re.compile(
    r"(?:(?:www|images)\.)?google\.(?:com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})"
    r"|encrypted\.google\.com"
)
# Bing ("Block adult content with SafeSearch", Microsoft's SafeSearch documentation for
# networks): www.bing.com as a CNAME to strict.bing.com; bing.com redirects there. Bing's image
# and video results are pages of www.bing.com (/images, /videos), so no other host is needed.
# cn.bing.com (Bing China) is not in that documentation and is left alone.
_BING = frozenset({"bing.com", "www.bing.com"})
# DuckDuckGo (help page "How do I force safe search for my network?": duckduckgo.com to
# safe.duckduckgo.com): the main site, and its other result front ends: start. (the start
# page), html. and lite. (the pages without JavaScript).
_DUCKDUCKGO = frozenset(
    {
        "duckduckgo.com",
        "www.duckduckgo.com",
        "start.duckduckgo.com",
        "html.duckduckgo.com",
        "lite.duckduckgo.com",
    }
)
# YouTube ("Restrict YouTube content on your network", support.google.com/a/answer/6214622,
# the DNS option): www.youtube.com, m.youtube.com, youtubei.googleapis.com (the apps),
# youtube.googleapis.com and www.youtube-nocookie.com (embeds), as a CNAME to
# restrict.youtube.com or restrictmoderate.youtube.com; youtube.com only redirects to www.
# music.youtube.com is not in that list and is left alone.
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
