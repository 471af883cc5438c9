"""The running server's own files in the state directory: the configuration in force, its pid.

`running-config.yaml` holds the exact text of the configuration the server applied last (at start
and after every applied reload), after one comment line saying when and from which file:

    # filterdns running configuration: applied 2026-11-23T14:30:00.000000Z from "/srv/c.yaml"

It is what `filterdns check --against running` and `filterdns reload` compare a file with, so an
admin sees what a reload would change before it happens. It may hold webhook URLs with tokens,
so it is written with mode 0600, atomically (a reader never sees half of it).

`filterdns.pid` holds the server's process id while it runs (removed at a clean stop), so
`filterdns reload` can send it SIGHUP. A pid file left by a crash is recognised: the process is
gone, or is not filterdns (`/proc/<pid>/cmdline`), and nothing is signalled.

The state directory is the directory of `log.database` (`/var/lib/filterdns` under systemd).
It is private (`make_state_private`): children's browsing history is in it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filterdns.config import Config, default_config, load_config_text
from filterdns.errors import ConfigError, ControlError
from filterdns.ops import privileges
from filterdns.policy.protection import Difference, difference
from filterdns.querylog import dbfile
from filterdns.querylog.store import KEY_FILE

log = logging.getLogger(__name__)

RUNNING_FILE = "running-config.yaml"
PID_FILE = "filterdns.pid"
HEADER = "# filterdns running configuration: applied "


def state_dir(config: Config) -> Path:
    """The state directory of an installation: where its log database lives."""
    return Path(config.log.database).parent


def make_state_private(config: Config) -> None:
    """Only the owner (and root) may read the state: the state directory and the list cache
    0700, every file in them 0600; an installation of an older version (0755, 0644) too."""
    directory = state_dir(config)
    database = config.log.database
    known = [
        database,
        *(Path(f"{database}{suffix}") for suffix in dbfile.SIDE_FILES),
        *(directory / name for name in (KEY_FILE, RUNNING_FILE, PID_FILE)),
    ]
    directories = [directory]
    cache_dir = Path(config.lists.cache_dir).absolute()
    if not cache_dir.is_relative_to(directory.absolute()):
        directories.append(cache_dir)
    for path in directories:
        for problem in privileges.make_private(path, known):
            log.warning("cannot make %s private (0600, directories 0700)", problem)


def hand_state_to(config: Config, user: str) -> None:
    """Root without systemd: the state directory and the list cache become `user`'s."""
    for directory in {state_dir(config), Path(config.lists.cache_dir)}:
        privileges.chown_state(directory, user)


def check_owner(config: Config) -> None:
    """Root serving without server.user on a state directory another user owns (the service's,
    started by hand): say that what it writes now will be root's, unreadable by the service."""
    if os.geteuid() != 0 or config.server.user is not None:
        return
    directory = state_dir(config)
    try:
        owner = directory.stat().st_uid
    except OSError:
        return
    if owner != 0:
        log.warning(
            "%s belongs to uid %d, but this server runs as root without server.user: files it "
            "writes there will be root's, unreadable by that user's server; set server.user, or "
            "start the service instead (systemctl start filterdns)",
            directory,
            owner,
        )


def check_reachable(directory: Path) -> None:
    """Warn when the user root became cannot reach its own state (a parent closed to it)."""
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        log.warning(
            "%s is out of reach of the user filterdns now runs as (a parent directory is closed"
            " to it): the log and grants stop working when they must open it again; keep the "
            "state under a directory every user may pass, such as /var/lib",
            directory,
        )


@dataclass(frozen=True, slots=True)
class Running:
    """The configuration the server applied last: its text, its file and when."""

    text: str
    source: str | None  # None: the embedded defaults
    applied: str  # ISO 8601 UTC

    def config(self) -> Config:
        """The configuration parsed again, relative paths taken from its own file's directory;
        ConfigError when it no longer loads (e.g. a list file it names was removed)."""
        if self.source is None:
            return default_config()
        base_dir = Path(self.source).absolute().parent
        return load_config_text(self.text, source=self.source, base_dir=base_dir)


def save_running(directory: Path, config: Config, now: float) -> Path:
    """Write the text `config` was read from as the running configuration; OSError on failure."""
    applied = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = config.text if config.source is not None and config.text is not None else ""
    path = Path(directory) / RUNNING_FILE
    _write(path, f"{HEADER}{applied} from {json.dumps(config.source)}\n{text}")
    return path


def read_running(directory: Path) -> Running | None:
    """The running configuration saved in `directory`; None when there is none (or it is not
    one of ours); ControlError when it cannot be read (another user's, mode 0600)."""
    path = Path(directory) / RUNNING_FILE
    try:
        content = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ControlError(
            f"cannot read {path}: {reason} (run this as root or as the server's user)"
        ) from None
    header, _, text = content.partition("\n")
    applied, sep, source = header.removeprefix(HEADER).partition(" from ")
    if not header.startswith(HEADER) or not sep:
        return None
    try:
        origin = json.loads(source)
    except ValueError:
        return None
    if origin is not None and not isinstance(origin, str):
        return None
    return Running(text, origin, applied)


def since_last_run(directory: Path, config: Config) -> Difference | None:
    """What `config` changes in protection against what the last run applied from the same
    file; None when there is nothing to compare with."""
    try:
        previous = read_running(directory)
        if previous is None or previous.source is None or previous.source != config.source:
            return None
        return difference(previous.config(), config)
    except (ControlError, ConfigError):
        return None


def write_pid(directory: Path) -> Path:
    """Record this process as the running server; OSError on failure."""
    path = Path(directory) / PID_FILE
    _write(path, f"{os.getpid()}\n")
    return path


def remove_pid(directory: Path) -> None:
    """Remove the pid file if it is still this process's (a newer server may have replaced it)."""
    path = Path(directory) / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_bytes().strip()) == os.getpid():  # no codec to load: root may be gone
            path.unlink()


def server_pid(directory: Path) -> int:
    """The pid of the filterdns server running on `directory`; ControlError saying why not."""
    path = Path(directory) / PID_FILE
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise ControlError(f"no filterdns server is running here ({path} does not exist)") from None
    except (OSError, ValueError) as exc:
        raise ControlError(f"cannot read {path}: {exc}") from None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise ControlError(
            f"no filterdns server is running: {path} names process {pid}, which is gone"
        ) from None
    except PermissionError:
        pass  # it exists, under another user: whether we may signal it is decided later
    if not _is_filterdns(pid):
        raise ControlError(
            f"no filterdns server is running: {path} names process {pid}, which is not filterdns"
        )
    return pid


def signal_reload(directory: Path) -> int:
    """Send SIGHUP to the running server (an explicit reload); its pid, or ControlError."""
    pid = server_pid(directory)
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        raise ControlError(
            f"not permitted to signal filterdns (process {pid}); run this as root or as the "
            "server's user, or use: systemctl reload filterdns"
        ) from None
    except ProcessLookupError:
        raise ControlError(f"filterdns (process {pid}) stopped before it could be told") from None
    return pid


def _is_filterdns(pid: int) -> bool:
    """False only when the process is known to be something else (a pid reused after a crash,
    which SIGHUP would kill); True when its command line cannot be read."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"filterdns" in command


def _write(path: Path, text: str) -> None:
    """Replace `path` by `text` atomically, mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()  # a leftover would keep its own mode
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
