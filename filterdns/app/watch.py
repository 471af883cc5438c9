"""The watch of the configuration file: a saved edit reloads the server by itself.

The file is looked at every `CONFIG_POLL` seconds (its modification time and size); a change
must hold for `CONFIG_SETTLE` seconds, since an editor may still be writing, and only a text the
server has not seen is tried: not the one running (a `touch`), nor one held back already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

CONFIG_POLL = 1.0  # seconds between two looks at the configuration file
CONFIG_SETTLE = 0.5  # a change must hold this long before it is read


async def watch_config(
    path: Path,
    seen: Callable[[], tuple[str | None, ...]],
    reload: Callable[[], Awaitable[object]],
) -> None:
    """Call `reload` whenever the file at `path` settles on a text not in `seen()` (forever)."""
    # No stamp yet: the first look compares the text with the one running, so an edit made
    # between reading the file and this task's start is not missed.
    stamp: tuple[int, int] | None = (-1, -1)
    while True:
        await asyncio.sleep(CONFIG_POLL)
        now = _stamp(path)
        if now == stamp:
            continue
        await asyncio.sleep(CONFIG_SETTLE)  # an editor may still be writing
        if _stamp(path) != now:
            continue
        stamp = now
        if now is not None and await asyncio.to_thread(_text, path) not in seen():
            await reload()


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the reload says why


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
