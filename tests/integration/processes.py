"""Real `filterdns` processes for the tests of who may read and write the state.

`start_serve` and `run_cli` run `python -m filterdns ...`, as root (the test process) or as
another user from the start (`subprocess` switches user, groups and umask before exec). That
user needs an interpreter it may read: this one when every user may, else the system's Python
of the same version with this checkout and its virtualenv's packages on PYTHONPATH (this test
machine keeps its interpreter under root's home, which nobody may enter); else, or when the
checkout itself is closed to other users (a clone under a 0700 directory), the test is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import site
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start processes as others")


@dataclass(frozen=True)
class Done:
    """A finished command: exit code and output."""

    code: int
    out: str
    err: str


def nobody() -> pwd.struct_passwd:
    """The unprivileged user the tests run processes as."""
    try:
        return pwd.getpwnam("nobody")
    except KeyError:  # pragma: no cover - every Debian has it
        pytest.skip('no user "nobody" on this system')


@contextlib.contextmanager
def open_directory() -> Iterator[Path]:
    """A fresh directory (mode 0755 under /tmp) that every user may pass, removed after.

    pytest's own temporary directories are closed to other users (0700 under root's).
    """
    path = Path(tempfile.mkdtemp(prefix="filterdns-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _open_to_everyone(path: Path) -> bool:
    """Whether any user may reach and read `path` (every directory above it passable)."""
    path = path.resolve()
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def require_open_checkout() -> None:
    """Skip unless other users may read this checkout: a process that gives root up (or a
    command acting as the state's owner) still imports modules from it afterwards."""
    if not _open_to_everyone(ROOT / "filterdns"):  # e.g. a clone under a 0700 mktemp directory
        pytest.skip(f"this checkout ({ROOT}) is closed to other users")


def _python_for_others() -> tuple[str, dict[str, str]]:
    """An interpreter another user may run, and the environment it needs."""
    require_open_checkout()
    stdlib = Path(os.__file__).parent
    if _open_to_everyone(Path(sys.executable)) and _open_to_everyone(stdlib):
        return sys.executable, {}
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if system.exists() and _open_to_everyone(system):
        paths = [str(ROOT), *site.getsitepackages()]
        if not all(_open_to_everyone(Path(p)) for p in paths if Path(p).exists()):
            pytest.skip("this checkout's virtualenv is closed to other users")
        return str(system), {"PYTHONPATH": os.pathsep.join(paths), "PYTHONNOUSERSITE": "1"}
    pytest.skip("no Python interpreter that another user may run")


def _command(
    args: Sequence[str], user: str | None, umask: int, env: dict[str, str] | None
) -> tuple[list[str], dict[str, Any]]:
    """The argv and the Popen options of `filterdns ARGS` as `user` (None: as this process)."""
    environment = dict(os.environ)
    environment.pop("NOTIFY_SOCKET", None)
    environment.update(env or {})
    options: dict[str, Any] = {"env": environment, "cwd": "/tmp", "umask": umask}
    if user is None:
        return [sys.executable, "-m", "filterdns", *args], options
    python, extra = _python_for_others()
    entry = pwd.getpwnam(user)
    environment.update(extra)
    environment["HOME"] = "/tmp"
    options.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    return [python, "-m", "filterdns", *args], options


async def start_serve(
    config: Path | None,
    *,
    user: str | None = None,
    umask: int = 0o022,
    env: dict[str, str] | None = None,
) -> tuple[asyncio.subprocess.Process, int, list[str]]:
    """`filterdns serve` (as `user`, with `umask`) until it says where it listens."""
    where = ["-c", str(config)] if config is not None else []
    argv, options = _command(["serve", *where], user, umask, env)
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, **options
    )
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=30)).decode()
        if not line:
            await process.wait()
            raise AssertionError(f"filterdns exited before listening: {''.join(seen)}")
        seen.append(line)
        match = LISTENING.search(line)
        if match:
            return process, int(match.group(1)), seen


async def stop(process: asyncio.subprocess.Process) -> str:
    """SIGTERM, then the rest of its log; it must exit 0."""
    if process.returncode is None:
        process.terminate()
    assert process.stderr is not None
    rest = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
    code = await asyncio.wait_for(process.wait(), 20)
    assert code == 0, rest
    return rest


async def run_cli(
    *args: str, user: str | None = None, umask: int = 0o022, env: dict[str, str] | None = None
) -> Done:
    """One `filterdns` command (as `user`); its exit code and output."""
    argv, options = _command(args, user, umask, env)
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **options
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


async def until(condition: Callable[[], bool], what: str, deadline: float = 10.0) -> float:
    """Poll `condition` every 20 ms until it holds; the seconds it took (AssertionError after
    `deadline` seconds, naming `what`)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > deadline:
            raise AssertionError(f"not within {deadline} s: {what}")
        await asyncio.sleep(0.02)
    return loop.time() - start


def modes(root: Path) -> dict[str, tuple[int, int]]:
    """Every directory and file under `root` (and root): path -> (mode, owner uid)."""
    found = {".": (root.stat().st_mode & 0o7777, root.stat().st_uid)}
    for directory, subdirs, files in os.walk(root):
        for name in (*subdirs, *files):
            path = Path(directory, name)
            st = path.lstat()
            found[str(path.relative_to(root))] = (st.st_mode & 0o7777, st.st_uid)
    return found


def not_private(root: Path, owner: int) -> dict[str, tuple[str, int]]:
    """What under `root` is not 0700 (directories) / 0600 (files) of `owner`."""
    wrong = {}
    for name, (mode, uid) in modes(root).items():
        want = 0o700 if (root / name).is_dir() else 0o600
        if (mode, uid) != (want, owner):
            wrong[name] = (oct(mode), uid)
    return wrong
