"""Dropping root after binding: unknown users, the non-root no-op, and a real drop in a child."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from filterdns.errors import FilterDnsError
from filterdns.lists.builder import give_back, identity_for
from filterdns.ops import privileges

UNKNOWN = "filterdns-no-such-user"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change identity")


def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:  # pragma: no cover - every Debian has it
        pytest.skip('no user "nobody" on this system')


def test_an_unknown_user_is_a_clear_error() -> None:
    with pytest.raises(FilterDnsError, match=f'user "{UNKNOWN}" does not exist.*server.user'):
        privileges.drop_privileges(UNKNOWN)
    with pytest.raises(FilterDnsError, match="does not exist"):
        privileges.chown_state("/nonexistent", UNKNOWN)


def test_an_unknown_group_is_a_clear_error() -> None:
    _nobody()
    with pytest.raises(FilterDnsError, match='group "filterdns-no-such-group" does not exist'):
        privileges.drop_privileges("nobody", "filterdns-no-such-group")


def test_root_is_not_a_user_to_drop_to() -> None:
    with pytest.raises(FilterDnsError, match="is root"):
        privileges.drop_privileges("root")
    _nobody()
    with pytest.raises(FilterDnsError, match="is root"):
        privileges.resolve("nobody", "root")


def test_resolve_takes_the_users_primary_group() -> None:
    entry = _nobody()
    who = privileges.resolve("nobody")
    assert (who.user, who.uid, who.gid) == ("nobody", entry.pw_uid, entry.pw_gid)


def test_not_root_is_a_logged_no_op(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    _nobody()
    calls: list[str] = []
    monkeypatch.setattr(privileges.os, "geteuid", lambda: 1000)
    for name in ("setgroups", "setresgid", "setresuid", "lchown"):
        monkeypatch.setattr(privileges.os, name, lambda *a, _n=name: calls.append(_n))
    with caplog.at_level(logging.INFO, logger="filterdns.ops.privileges"):
        privileges.drop_privileges("nobody")
        privileges.chown_state(tmp_path / "state", "nobody")
    assert calls == []
    assert not (tmp_path / "state").exists()
    assert "not running as root: staying uid 1000 instead of switching to nobody" in caplog.text


def _in_child(work: object) -> int:
    """Run `work()` in a forked child (so the test process keeps root); its exit code."""
    with warnings.catch_warnings():  # a fork beside other threads: the child only drops ids
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which exits without returning
        code = 99
        try:
            code = work()  # type: ignore[operator]
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@as_root
def test_a_real_drop_to_nobody_in_a_child() -> None:
    entry = _nobody()
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))  # bound before the drop, still usable after it

    def work() -> int:
        privileges.drop_privileges("nobody")
        if os.getresuid() != (entry.pw_uid,) * 3:
            return 1
        if os.getresgid() != (entry.pw_gid,) * 3:
            return 2
        if os.getgroups() not in ([], [entry.pw_gid]):
            return 3
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            return 4
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            try:
                other.bind(("127.0.0.1", 53))
            except PermissionError:
                pass
            else:
                return 5  # CAP_NET_BIND_SERVICE should be gone with root
        listener.sendto(b"x", listener.getsockname())
        return 0 if listener.recv(1) == b"x" else 6

    try:
        assert _in_child(work) == 0
    finally:
        listener.close()


@as_root
def test_chown_state_hands_over_the_whole_tree(tmp_path: Path) -> None:
    entry = _nobody()
    state = tmp_path / "state"
    (state / "lists").mkdir(parents=True)
    (state / "filterdns.db").write_bytes(b"")
    (state / "lists" / "index.bin").write_bytes(b"")
    (state / "link").symlink_to("/etc/passwd")
    before = os.stat("/etc/passwd")
    privileges.chown_state(state, "nobody")
    for path in (state, state / "lists", state / "filterdns.db", state / "lists" / "index.bin"):
        assert (path.stat().st_uid, path.stat().st_gid) == (entry.pw_uid, entry.pw_gid), path
    assert os.lstat(state / "link").st_uid == entry.pw_uid
    after = os.stat("/etc/passwd")  # the link was not followed
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


@as_root
def test_chown_state_creates_a_missing_directory(tmp_path: Path) -> None:
    entry = _nobody()
    state = tmp_path / "new" / "state"
    privileges.chown_state(state, "nobody")
    assert state.stat().st_uid == entry.pw_uid
    assert state.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "path", ["/", "/etc", "/var/lib", "/usr/lib", "/home/alice", "/tmp/../var"]
)
def test_chown_state_refuses_system_directories(path: str) -> None:
    _nobody()
    with pytest.raises(FilterDnsError, match="is a system directory"):
        privileges.chown_state(path, "nobody")


def test_make_private_fixes_an_older_installation(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "lists" / "copies").mkdir(parents=True)
    files = [
        state / "filterdns.db",
        state / "lists" / "index.bin",
        state / "lists" / "copies" / "a",
    ]
    for file in files:
        file.write_text("x")
        file.chmod(0o644)
    for directory in (state, state / "lists", state / "lists" / "copies"):
        directory.chmod(0o755)
    outside = tmp_path / "outside"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (state / "link").symlink_to(outside)
    assert privileges.make_private(state) == []
    for directory in (state, state / "lists", state / "lists" / "copies"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    for file in files:
        assert file.stat().st_mode & 0o777 == 0o600, file
    assert outside.stat().st_mode & 0o777 == 0o644  # the link was not followed


def test_make_private_touches_only_its_own_files_in_a_system_directory(tmp_path: Path) -> None:
    mine = tmp_path / "filterdns.db"
    mine.write_text("x")
    mine.chmod(0o644)
    before = os.stat("/tmp").st_mode
    assert privileges.make_private("/tmp", [mine, tmp_path / "missing"]) == []
    assert os.stat("/tmp").st_mode == before
    assert mine.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def passable() -> Iterator[Path]:
    """A directory every user may pass (pytest's own are closed to others)."""
    path = Path(tempfile.mkdtemp(prefix="filterdns-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@as_root
def test_make_private_names_what_it_may_not_change(passable: Path) -> None:
    entry = _nobody()
    state = passable / "state"
    state.mkdir(mode=0o755)
    os.chown(state, entry.pw_uid, entry.pw_gid)
    roots = state / "written-as-root"
    roots.write_text("x")
    roots.chmod(0o644)

    def work() -> int:
        os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
        os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
        problems = privileges.make_private(state)
        expected = [f"{roots}: Operation not permitted (it belongs to root)"]
        return 0 if problems == expected else 1

    assert _in_child(work) == 0
    assert state.stat().st_mode & 0o777 == 0o700  # what it owns, it fixed


@as_root
@pytest.mark.parametrize(
    ("owner", "user", "becomes"),
    [("nobody", None, "nobody"), ("root", "nobody", None), ("missing", None, None),
     ("missing", "nobody", "nobody")],
)  # fmt: skip
def test_act_as_owner_becomes_the_state_directorys_owner(
    passable: Path, owner: str, user: str | None, becomes: str | None
) -> None:
    entry = _nobody()
    state = passable / "state"
    if owner != "missing":
        state.mkdir(mode=0o700)
        uid = pwd.getpwnam(owner).pw_uid
        os.chown(state, uid, uid and entry.pw_gid)

    def work() -> int:
        who = privileges.act_as_owner(state, user)
        want = pwd.getpwnam(becomes).pw_uid if becomes else 0
        if (who.user if who else None) != becomes or os.getresuid() != (want,) * 3:
            return 1
        return 0 if os.getgroups() in ([], [entry.pw_gid]) or not becomes else 2

    assert _in_child(work) == 0
    if owner == "missing" and user is not None:
        assert state.stat().st_uid == entry.pw_uid and state.stat().st_mode & 0o777 == 0o700


@as_root
def test_a_list_build_started_by_root_runs_as_the_owner_of_the_cache(passable: Path) -> None:
    entry = _nobody()
    cache = passable / "lists"
    cache.mkdir()
    assert identity_for(cache) is None  # root's own cache: nothing to change
    os.chown(cache, entry.pw_uid, entry.pw_gid)
    assert identity_for(cache) == (entry.pw_uid, entry.pw_gid)
    assert identity_for(passable / "missing") is None


@as_root
def test_what_root_built_in_a_users_cache_goes_back_to_that_user(passable: Path) -> None:
    entry = _nobody()
    cache = passable / "lists"
    (cache / "copies").mkdir(parents=True)
    (cache / "index.bin").write_bytes(b"")
    (cache / "copies" / "a.txt").write_text("a.example\n")
    os.chown(cache, entry.pw_uid, entry.pw_gid)
    give_back(cache)
    owners = {p.relative_to(cache).as_posix(): p.stat().st_uid for p in cache.rglob("*")}
    assert owners == dict.fromkeys(["copies", "index.bin", "copies/a.txt"], entry.pw_uid)


def test_handing_over_the_state_tolerates_files_vanishing_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    (state / "lists").mkdir(parents=True)
    (state / "lists" / "index.bin.tmp").write_bytes(b"")

    changed: list[str] = []

    def racing_lchown(path: str | Path, uid: int, gid: int) -> None:
        if str(path).endswith(".tmp"):  # a list build renamed its temporary file just now
            raise FileNotFoundError(2, "No such file or directory", str(path))
        changed.append(str(path))

    monkeypatch.setattr(os, "lchown", racing_lchown)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    me = "nobody"  # an unprivileged user that exists; nothing is really changed below
    privileges.chown_state(state, me)  # no FilterDnsError
    assert changed == [str(state), str(state / "lists")]
