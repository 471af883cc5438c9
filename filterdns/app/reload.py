"""What a reload decides before anything is swapped: whether to apply the file, what it changes
in protection, what needs a restart, and which lists it serves.

`App.reload` (app/lifecycle.py) runs the steps and swaps the result in.
"""

from __future__ import annotations

import logging

from filterdns.config import Config
from filterdns.lists.catalog import ListSet
from filterdns.policy.protection import Difference

# Reload lines name the app, as they always have ("WARNING filterdns.app: reload of ...").
log = logging.getLogger("filterdns.app")

READY_STATUS = {  # what systemd shows after a reload, by its result
    "applied": "reloaded",
    "rejected": "reload rejected; the old rules stay",
    "held": "reload held back: it weakens protection; `filterdns reload` applies it",
}


async def lists_for(old: Config, new: Config, lists: ListSet) -> ListSet:
    """The lists `new` serves: a new set when its lists or categories changed (built in a child
    process while the old index serves), else `lists`, with local list files edited on disk
    rebuilt likewise."""
    if (new.lists, new.categories) != (old.lists, old.categories):
        fresh = ListSet(new.lists, new.categories)
        await fresh.load()
        return fresh
    await lists.reload_local()
    return lists


def judge(found: Difference, source: str, *, explicit: bool) -> bool:
    """Log what a reload changes in protection; False when it must be held back (it weakens
    protection and only the file watch asked for it)."""
    if not found.changes:
        log.info("reload: no change to protection")
    held = found.weakens and not explicit
    who = ", ".join(found.who())
    if held:
        log.warning(
            "reload of %s held back: it weakens protection for %s; the running rules stay. "
            "To apply it on purpose: filterdns reload (or systemctl reload filterdns)",
            source,
            who,
        )
    elif found.weakens:
        log.warning("reload: applying changes that weaken protection for %s", who)
    prefix = "held back" if held else "reload"
    for change in found.ordered():
        log.log(logging.WARNING if change.weakens else logging.INFO, "%s: %s", prefix, change.text)
    return not held


def restart_notes(old: Config, new: Config) -> list[str]:
    """What a reload cannot apply to a running server, in words an admin can act on."""
    notes = []
    if old.server.listen != new.server.listen:
        listen = ", ".join(str(a) for a in new.server.listen)
        notes.append(f"server.listen changed to {listen}; restart filterdns to listen there")
    for key in (
        "tcp_idle_timeout",
        "max_tcp_connections",
        "max_tcp_connections_per_client",
        "shutdown_grace",
        "workers",
    ):
        if getattr(old.server, key) != getattr(new.server, key):
            notes.append(f"server.{key} changed; it applies after a restart")
    if old.log != new.log:
        notes.append("log settings changed; they apply after a restart")
    return notes
