"""`lists:` how remote list sources are fetched and where their copies are kept, and
`categories:` the list sources of each category (shipped, files, URLs)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from filterdns.config.fragments import (
    CATEGORY_KEY_PATTERN,
    CATEGORY_PATTERN,
    Schema,
    list_of,
    mapping_of,
    ref,
    string,
    to_json,
)
from filterdns.config.readers import (
    ConfigReader,
    Section,
    boolean_key,
    duration_key,
    file_key,
    percent_key,
    whole_key,
)
from filterdns.config.walker import Node, join, show

# The categories the name model answers with (lists.namemodel): sites no list holds yet whose
# name looks adult or gambling. They have no list files.
MODEL_CATEGORIES = ("adult-suspect", "gambling-suspect")
# The default categories: those shipped in blocklists/ (lists.shipped keeps them) and the model's.
# `ads` (ads and trackers) ships too but no age band blocks it: a profile adds it to its
# `categories`.
DEFAULT_CATEGORIES = (
    "adult", "adult-suspect", "gambling", "gambling-suspect", "dating", "drugs", "violence",
    "social", "chat", "games", "video",
    "bypass", "malware", "phishing", "piracy", "cryptojacking", "stalkerware", "ads",
)  # fmt: skip
# The lists of this pseudo-category hold names no category may block (schools, government,
# health, infrastructure...): each of their entries is an allow entry for every category. The
# shipped `blocklists/never-block.txt` is always read; `categories: {never-block: [...]}` adds
# a configuration's own.
NEVER_BLOCK_CATEGORY = "never-block"
# `shipped` in a category's sources stands for the lists shipped with the package; inside the
# proxy one shipped file is named "shipped:<file>" (lists.shipped.shipped_path finds it).
SHIPPED_SOURCE = "shipped"
SHIPPED_PREFIX = f"{SHIPPED_SOURCE}:"
CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")

Categories = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class ListsConfig:
    """`lists:` how remote list sources are fetched and where their copies are kept."""

    refresh: float = 86400.0  # seconds between downloads of each remote source; 0: never
    cache_dir: Path = Path("lists")  # relative to the state directory by default
    timeout: float = 30.0  # a whole download, not one read
    max_megabytes: int = 64  # a bigger download is refused and the last good copy kept
    # The big default lists that are downloaded rather than shipped (UT1 adult, malware,
    # phishing, redirector; see blocklists/SOURCES.md); false keeps to the shipped files.
    download_defaults: bool = True
    # A new version of a source with fewer than (100 - max_shrink) % of the entries of its last
    # good copy is rejected and the copy kept (percent; 100 accepts any shrink).
    max_shrink: float = 90.0


SECTION = Section(
    "lists",
    ListsConfig,
    "How remote list sources are fetched and where their copies are kept",
    (
        duration_key("refresh", "How often each remote list source is downloaded again; 0: "
                     "never"),
        file_key("cache_dir", "Where downloaded lists are kept; relative to this file's "
                 "directory. Default: lists in the state directory"),
        duration_key("timeout", "Time allowed for one whole download", positive=True),
        whole_key("max_megabytes", 1, 4096, "A bigger download is refused"),
        boolean_key("download_defaults", "Download the big default lists too big to ship; "
                    "false keeps to shipped files"),
        percent_key("max_shrink", "A new version of a source with fewer than (100 - max_shrink) "
                    "% of the entries of its last good copy is rejected and the copy kept; 100% "
                    "accepts any shrink"),
    ),
)  # fmt: skip


def read_categories(r: ConfigReader, node: Node, path: str) -> Categories | None:
    """`{gambling: [shipped, lists/extra.txt, "https://..."]}` in file order."""
    found: list[tuple[str, tuple[str, ...]]] = []
    good = True
    expected = "a mapping of category names to list sources, e.g. {gambling: [shipped]}"
    for name, key_node, value in r.pairs(node, path, expected):
        key_path = join(path, name)
        if not CATEGORY.fullmatch(name):
            message = (
                f"{show(name)} is not a category name (lower-case letters, digits, '-' and"
                " '_', at most 40)"
            )
            r.problem(key_node, key_path, message)
            good = False
        sources = r.parsed(
            value,
            key_path,
            "list sources",
            functools.partial(_list_source, r, name),
            "needs at least one source; write [shipped] for the shipped list",
        )
        if sources is None:
            good = False
        elif good:
            found.append((name, sources))
    return tuple(found) if good else None


def _list_source(r: ConfigReader, category: str, text: str) -> str:
    """ "shipped", an http(s):// URL, or a file path (relative to the configuration file)."""
    text = text.strip()
    if text == SHIPPED_SOURCE:
        if (
            category not in DEFAULT_CATEGORIES or category in MODEL_CATEGORIES
        ) and category != NEVER_BLOCK_CATEGORY:
            raise ValueError(
                f"{category!r} has no shipped list; shipped categories: "
                + ", ".join(c for c in DEFAULT_CATEGORIES if c not in MODEL_CATEGORIES)
            )
        return text
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("http", "https"):
        if not text.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError(f"{show(text)} has no host")
        return text
    if scheme:
        raise ValueError(f"{show(text)}: list sources are files or http(s):// URLs")
    return str(r.path(text))


def categories_schema(default: Categories) -> Schema:
    """The schema of `categories:`."""
    return mapping_of(
        "The list sources of each category: shipped, a file or an http(s):// URL. "
        "Shipped categories: " + ", ".join(DEFAULT_CATEGORIES) + "; new names add categories",
        list_of(string("A list source: shipped, a file path or an http(s):// URL")),
        {"pattern": CATEGORY_KEY_PATTERN},
        default={name: to_json(sources) for name, sources in default},
    )


def category_definitions() -> dict[str, Schema]:
    """The shared `$defs/category` and `$defs/categories` every category list refers to."""
    description = (
        "A category: a shipped one ("
        + ", ".join(DEFAULT_CATEGORIES)
        + ") or a name defined under categories:"
    )
    return {
        "category": string(description, CATEGORY_PATTERN, examples=list(DEFAULT_CATEGORIES)),
        "categories": list_of(ref("category"), "Categories"),
    }
