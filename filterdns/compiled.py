"""The hot modules compiled to C, used only when they were built from this very source.

Every query runs the same few modules (the parse, the listener, the links of the chain, the
answer memo, the blocked answer); `make compiled` (scripts/compile.py) compiles them with mypyc,
which the strict typing allows, into `filterdns/_compiled/<python>-<platform>/`: an extension
module each, one shared library and `manifest.json` with the SHA-256 of each module's source.

`use()` runs once, from `filterdns/__init__.py`, before any of them is imported: when the
manifest is there, was built for this interpreter and names the same digests as the sources on
disk, an import finder placed first hands out the extension modules; otherwise (nothing built, a
source edited since, another Python, `FILTERDNS_COMPILED=0`) nothing changes and the Python
modules run, as they always can. It is all or nothing: the compiled modules call each other
directly, so one stale module turns them all off. `state()` says which, for `filterdns serve`'s
start-up line and `/metrics`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# The modules compiled: those every query runs (bench/PROFILE.md, "Compiled hot modules").
HOT = (
    "filterdns.dns.names",
    "filterdns.dns.wire",
    "filterdns.dns.model",
    "filterdns.dns.server",
    "filterdns.resolvers.access",
    "filterdns.resolvers.answermemo",
    "filterdns.resolvers.client",
    "filterdns.resolvers.local",
    "filterdns.resolvers.policy",
    "filterdns.resolvers.querylog",
    "filterdns.policy.clients",
    "filterdns.policy.state",
    "filterdns.querylog.alerts",
    "filterdns.memo",
    "filterdns.policy.decisions",
    "filterdns.policy.steps",
    "filterdns.policy.values",
    "filterdns.resolvers.cache",
    "filterdns.dns.replies",
    "filterdns.querylog.rows",
    "filterdns.querylog.fold",
    "filterdns.resolvers.upstream",
    "filterdns.resolvers.exchange",
    "filterdns.dns.transport",
    "filterdns.dns.udpsockets",
    "filterdns.dns.outgoing",
    "filterdns.wheel",
    "filterdns.lists.index",
    "filterdns.policy.special",
    "filterdns.policy.answers",
    "filterdns.dns.addresses",
    "filterdns.dns.ratelimit",
    "filterdns.dns.records",
)
ENV = "FILTERDNS_COMPILED"  # "0": the Python modules, whatever is built
PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE / "_compiled"


def tag() -> str:
    """What a build is good for: this interpreter's version and ABI, and the platform."""
    return f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"


def build_dir() -> Path:
    """Where `make compiled` writes this interpreter's build."""
    return ROOT / tag()


def source(module: str) -> Path:
    """The Python source of one of the HOT modules."""
    return PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex."""
    import hashlib  # noqa: PLC0415 - only with a build present: imported by the check alone

    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Finder:
    """Finds the compiled modules (and their shared library) by name; None for the rest."""

    def __init__(self, locations: dict[str, Path]) -> None:
        self.locations = locations

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        location = self.locations.get(fullname)
        if location is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(location))
        return importlib.util.spec_from_file_location(fullname, location, loader=loader)


_STATE = "Python modules (nothing compiled)"


def state() -> str:
    """Which modules this process runs: compiled, or Python and why."""
    return _STATE


def check(directory: Path) -> tuple[dict[str, Path] | None, str]:
    """The compiled modules' files by module name when the build in `directory` is usable for
    the sources on disk, else None; and why, in words."""
    import json  # noqa: PLC0415 - as digest()

    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        built = {
            str(name): (str(e["file"]), str(e["sha256"])) for name, e in manifest["modules"].items()
        }
        library = (str(manifest["library"]["name"]), str(manifest["library"]["file"]))
        built_for = manifest["tag"]
    except FileNotFoundError:
        return None, "Python modules (nothing compiled: make compiled)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"Python modules (the compiled build's manifest is unreadable: {exc!r})"
    if built_for != tag():
        return None, f"Python modules (compiled for {built_for}, not {tag()})"
    if sorted(built) != sorted(HOT):
        return None, "Python modules (the compiled build holds other modules: make compiled)"
    locations: dict[str, Path] = {}
    for name, (file, sha256) in built.items():
        path = source(name)
        try:
            same = digest(path) == sha256
        except OSError:  # gone, or not readable by this user
            same = False
        if not same:
            return None, f"Python modules ({path.name} changed since it was compiled)"
        locations[name] = directory / file
    locations[library[0]] = directory / library[1]
    if not all(path.is_file() for path in locations.values()):
        return None, "Python modules (a compiled file is missing: make compiled)"
    return locations, f"compiled modules ({len(built)}, {directory.name})"


def install(locations: dict[str, Path], library: str) -> str | None:
    """Place the finder first and load the shared library the compiled modules run in; on a
    library that does not load (a damaged file, a missing C library), take the finder out
    again and say why (the Python modules run)."""
    finder = _Finder(locations)
    sys.meta_path.insert(0, finder)
    try:
        importlib.import_module(library)
    except (ImportError, OSError) as exc:
        sys.meta_path.remove(finder)
        sys.modules.pop(library, None)
        return f"Python modules (the compiled build does not load: {exc})"
    return None


def use() -> None:
    """Place the finder of the compiled modules first, when they match the sources."""
    global _STATE  # noqa: PLW0603 - decided once per process, before the modules are imported
    if os.environ.get(ENV, "1") == "0":
        _STATE = f"Python modules ({ENV}=0)"
        return
    if not ROOT.is_dir():  # the usual case without a build: one stat
        return
    locations, _STATE = check(build_dir())
    if locations is None:
        return
    if any(name in sys.modules for name in locations):
        _STATE = "Python modules (imported before the compiled ones could be placed)"
        return
    library = next(name for name in locations if name not in HOT)
    _STATE = install(locations, library) or _STATE
