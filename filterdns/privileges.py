"""Running as root without systemd: hand the state over to a user, then become that user.

Started by root (port 53 needs it without systemd's `AmbientCapabilities`), the proxy binds its
listeners first and then gives root up for good:

    chown_state(state_dir, "filterdns")   # the database, grants and list cache become its own
    drop_privileges("filterdns")          # supplementary groups cleared, then gid, then uid

After `drop_privileges` the real, effective and saved ids are all the user's, so nothing can be
regained: the sockets already bound stay open, every capability is gone. Under systemd the unit
does this itself (`User=`), and both functions are no-ops for a process that is not root.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from filterdns.errors import FilterDnsError

log = logging.getLogger(__name__)

__all__ = ["Identity", "chown_state", "drop_privileges", "resolve"]

# A directory right under one of these is the system's (/etc, /var/lib, /usr/lib, /home/alice):
# never handed over as a whole, whatever log.database or lists.cache_dir say.
SYSTEM_PARENTS = frozenset(map(Path, ["/", "/usr", "/usr/local", "/var", "/home"]))


@dataclass(frozen=True, slots=True)
class Identity:
    """A user and the group to run as, resolved to ids."""

    user: str
    uid: int
    group: str
    gid: int


def resolve(user: str, group: str | None = None) -> Identity:
    """Look the user (and group, by default the user's own) up; FilterDnsError if unknown."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise FilterDnsError(
            f'user "{user}" does not exist; create it (e.g. `useradd --system --no-create-home '
            f"--shell /usr/sbin/nologin {user}`) or name another one in server.user"
        ) from None
    if entry.pw_uid == 0:
        raise FilterDnsError(f'user "{user}" is root; name an unprivileged user to run as')
    if group is None:
        gid = entry.pw_gid
        try:
            group_name = grp.getgrgid(gid).gr_name
        except KeyError:
            group_name = str(gid)
    else:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise FilterDnsError(f'group "{group}" does not exist') from None
        group_name = group
    if gid == 0:
        raise FilterDnsError(f'group "{group_name}" is root; name an unprivileged group')
    return Identity(user, entry.pw_uid, group_name, gid)


def drop_privileges(user: str, group: str | None = None) -> None:
    """Become `user` (and `group`, by default the user's primary group) for good.

    Call it after the listeners are bound. Supplementary groups are cleared, then the real,
    effective and saved gid and uid are set, so no capability or id is kept. A process that is
    not root cannot change identity: it carries on as it is and says so in the log.
    """
    who = resolve(user, group)
    if os.geteuid() != 0:
        if os.geteuid() != who.uid:
            log.info(
                "not running as root: staying uid %d instead of switching to %s",
                os.geteuid(),
                who.user,
            )
        return
    try:
        os.setgroups([])
        os.setresgid(who.gid, who.gid, who.gid)
        os.setresuid(who.uid, who.uid, who.uid)
    except OSError as exc:
        raise FilterDnsError(f"cannot switch to user {who.user}: {exc}") from exc
    try:
        os.setresuid(0, 0, 0)
    except PermissionError:
        pass  # the expected outcome: root is gone for good
    else:  # pragma: no cover - only on a kernel that ignores setresuid
        raise FilterDnsError(f"switched to user {who.user} but root could be regained")
    log.info(
        "running as user %s (uid %d), group %s (gid %d)",
        who.user,
        who.uid,
        who.group,
        who.gid,
    )


def chown_state(path: str | Path, user: str, group: str | None = None) -> None:
    """Give the state directory `path` and everything in it to `user` (before dropping root).

    The directory is created (mode 0700) when missing. Symbolic links are changed themselves,
    never followed. A system directory (/etc, /var/lib, a home directory) is refused with
    FilterDnsError. A process that is not root leaves everything as it is.
    """
    who = resolve(user, group)
    root = Path(os.path.abspath(path))
    if root.parent in SYSTEM_PARENTS or root == root.parent:
        raise FilterDnsError(
            f"{root} is a system directory; keep the state (log.database, lists.cache_dir) in a "
            "directory of its own, such as /var/lib/filterdns"
        )
    if os.geteuid() != 0:
        return
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.lchown(root, who.uid, who.gid)
        for directory, subdirs, files in os.walk(root):
            for name in (*subdirs, *files):
                os.lchown(os.path.join(directory, name), who.uid, who.gid)
    except OSError as exc:
        raise FilterDnsError(f"cannot hand {root} to user {who.user}: {exc}") from exc
