"""Who may read the state: private files, and running as root without systemd.

Started by root (port 53 needs it without systemd's `AmbientCapabilities`), the proxy binds its
listeners first and then gives root up for good:

    chown_state(state_dir, "filterdns")   # the database, grants and list cache become its own
    drop_privileges("filterdns")          # supplementary groups cleared, then gid, then uid

After `drop_privileges` the real, effective and saved ids are all the user's, so nothing can be
regained: the sockets already bound stay open, every capability is gone. Under systemd the unit
does this itself (`User=`), and both functions are no-ops for a process that is not root.

The state holds children's browsing history, grants and the key that hides client addresses,
so it is private however the server starts: `make_private` gives the state directory mode 0700
and every file in it 0600 (an installation of an older version, 0755 and 0644, is fixed at the
next start), and the server runs with umask 0077 for what it creates later. Only the owner (the
service user) and root read it. A command root runs on the state (`grant`, `revoke`, `grants`,
`explain`, `lists`) first becomes the state directory's owner (`act_as_owner`), so whatever it
writes stays readable by the server.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filterdns.errors import FilterDnsError

log = logging.getLogger(__name__)

__all__ = [
    "Identity",
    "act_as_owner",
    "chown_state",
    "drop_privileges",
    "is_system_directory",
    "make_private",
    "resolve",
]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

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
    _switch(who)
    log.info(
        "running as user %s (uid %d), group %s (gid %d)",
        who.user,
        who.uid,
        who.group,
        who.gid,
    )


def _switch(who: Identity) -> None:
    """Set every id to `who`'s, for good (root only); FilterDnsError if that fails."""
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


def act_as_owner(directory: str | Path, user: str | None = None) -> Identity | None:
    """Root running a command on the state becomes the state directory's owner, for good.

    So a grant made with sudo or as root is written by the same user as the server's own writes,
    and every file it creates (the database when there is none yet, its -wal and -shm, list
    copies) stays readable by the server. A missing directory is created for `user` (the
    configuration's server.user) when there is one; without it, and for a directory root owns,
    nothing changes. Returns the identity taken, or None.
    """
    if os.geteuid() != 0:
        return None
    root = Path(os.path.abspath(directory))
    try:
        st = root.stat()
    except FileNotFoundError:
        if user is None:
            return None
        chown_state(root, user)
        st = root.stat()
    if st.st_uid == 0:
        return None
    try:
        entry = pwd.getpwuid(st.st_uid)
        name, gid = entry.pw_name, entry.pw_gid
    except KeyError:  # an owner without a name: take the directory's group
        name, gid = str(st.st_uid), st.st_gid
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    who = Identity(name, st.st_uid, group, gid)
    _switch(who)
    return who


def is_system_directory(path: str | Path) -> bool:
    """A directory right under /, /usr, /var, /home...: the system's or a person's, not ours."""
    root = Path(os.path.abspath(path))
    return root.parent in SYSTEM_PARENTS or root == root.parent


def chown_state(path: str | Path, user: str, group: str | None = None) -> None:
    """Give the state directory `path` and everything in it to `user` (before dropping root).

    The directory is created (mode 0700) when missing. Symbolic links are changed themselves,
    never followed. A system directory (/etc, /var/lib, a home directory) is refused with
    FilterDnsError. A process that is not root leaves everything as it is.
    """
    who = resolve(user, group)
    root = Path(os.path.abspath(path))
    if is_system_directory(root):
        raise FilterDnsError(
            f"{root} is a system directory; keep the state (log.database, lists.cache_dir) in a "
            "directory of its own, such as /var/lib/filterdns"
        )
    if os.geteuid() != 0:
        return
    try:
        root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        os.lchown(root, who.uid, who.gid)
        for directory, subdirs, files in os.walk(root):
            for name in (*subdirs, *files):
                # A list build may remove its temporary files meanwhile: gone is fine.
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(os.path.join(directory, name), who.uid, who.gid)
    except OSError as exc:
        raise FilterDnsError(f"cannot hand {root} to user {who.user}: {exc}") from exc


def make_private(path: str | Path, known: Iterable[str | Path] = ()) -> list[str]:
    """Mode 0700 for the state directory `path` and its subdirectories, 0600 for every file.

    A system directory (the state kept in /var/lib or a home directory itself) is left as it
    is, apart from the `known` files of filterdns in it. Symbolic links are never followed.
    Returns what could not be changed ("PATH: reason"), e.g. a file another user owns.
    """
    root = Path(os.path.abspath(path))
    problems: list[str] = []
    if is_system_directory(root):
        for file in known:
            _chmod(Path(file), PRIVATE_FILE, problems)
        return problems
    if not root.is_dir():
        return problems
    _chmod(root, PRIVATE_DIR, problems)

    def unreadable(exc: OSError) -> None:
        problems.append(f"{exc.filename}: {exc.strerror or exc}")

    for directory, subdirs, files in os.walk(root, onerror=unreadable):
        for name in subdirs:
            _chmod(Path(directory, name), PRIVATE_DIR, problems)
        for name in files:
            _chmod(Path(directory, name), PRIVATE_FILE, problems)
    return problems


def _chmod(path: Path, mode: int, problems: list[str]) -> None:
    """`mode` for a regular file or directory (never through a link) unless it has it already."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        problems.append(f"{path}: {exc.strerror or exc}")
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return
    if stat.S_IMODE(st.st_mode) == mode:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        owner = _name(st.st_uid)
        problems.append(f"{path}: {exc.strerror or exc} (it belongs to {owner})")


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
