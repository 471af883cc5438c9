"""The running server's files: the configuration in force, the pid `filterdns reload` signals."""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from filterdns.config import default_config, load_config, load_config_text
from filterdns.errors import ControlError
from filterdns.ops import runstate

TEXT = """\
# the family's rules
categories:
  gambling: [shipped, lists/gambling.txt]   # relative to the file
profiles: {minh: {age_band: 9-12}}
"""


def test_the_running_file_keeps_the_exact_text_and_where_it_came_from(tmp_path: Path) -> None:
    source = tmp_path / "etc" / "config.yaml"
    source.parent.mkdir()
    source.write_text(TEXT)
    config = load_config(source)
    state = tmp_path / "state"
    path = runstate.save_running(state, config, now=1_795_000_000.25)
    assert path == state / "running-config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == (
        "# filterdns running configuration: applied 2026-11-18T11:06:40.250000Z from "
        f'"{source}"\n' + TEXT
    )
    running = runstate.read_running(state)
    assert running is not None
    assert (running.text, running.source) == (TEXT, str(source))
    again = running.config()  # relative paths from the file's own directory, not the state's
    assert again == config
    assert dict(again.categories)["gambling"] == (
        "shipped",
        str(source.parent / "lists/gambling.txt"),
    )


def test_the_embedded_defaults_are_saved_as_such(tmp_path: Path) -> None:
    runstate.save_running(tmp_path, default_config(), now=0)
    running = runstate.read_running(tmp_path)
    assert running is not None
    assert (running.text, running.source) == ("", None)
    assert running.config() == default_config()


@pytest.mark.parametrize(
    "content", ["", "profiles: {}\n", "# filterdns running configuration: applied x from {\n"]
)
def test_a_file_that_is_not_ours_is_no_running_configuration(tmp_path: Path, content: str) -> None:
    (tmp_path / "running-config.yaml").write_text(content)
    assert runstate.read_running(tmp_path) is None
    assert runstate.read_running(tmp_path / "nowhere") is None


def test_the_pid_file_names_this_process_and_is_removed_only_by_it(tmp_path: Path) -> None:
    path = runstate.write_pid(tmp_path)
    assert path.read_text() == f"{os.getpid()}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("1\n")  # another server took over the directory
    runstate.remove_pid(tmp_path)
    assert path.exists()
    runstate.write_pid(tmp_path)
    runstate.remove_pid(tmp_path)
    assert not path.exists()


def test_no_pid_file_means_no_server(tmp_path: Path) -> None:
    with pytest.raises(
        ControlError, match=r"no filterdns server is running here \(.*filterdns.pid"
    ):
        runstate.signal_reload(tmp_path)


def test_a_pid_file_left_by_a_crash_is_not_signalled(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "filterdns.pid").write_text(f"{gone.pid}\n")
    with pytest.raises(ControlError, match=f"names process {gone.pid}, which is gone"):
        runstate.signal_reload(tmp_path)


def test_a_reused_pid_is_never_sent_sighup(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "filterdns.pid").write_text(f"{other.pid}\n")
        with pytest.raises(ControlError, match="which is not filterdns"):
            runstate.signal_reload(tmp_path)
        assert other.poll() is None  # still running: nothing was sent
    finally:
        other.kill()
        other.wait()


def test_a_server_of_another_user_is_reported_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "filterdns.pid").write_text("4242\n")
    sent: list[tuple[int, int]] = []

    def kill(pid: int, sig: int) -> None:
        sent.append((pid, sig))
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(runstate.os, "kill", kill)
    monkeypatch.setattr(runstate, "_is_filterdns", lambda pid: True)
    with pytest.raises(ControlError) as caught:
        runstate.signal_reload(tmp_path)
    assert str(caught.value) == (
        "not permitted to signal filterdns (process 4242); run this as root or as the server's "
        "user, or use: systemctl reload filterdns"
    )
    assert sent == [(4242, 0), (4242, signal.SIGHUP)]


def test_a_running_server_gets_sighup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "filterdns.pid").write_text("4242\n")
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(runstate.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(runstate, "_is_filterdns", lambda pid: True)
    assert runstate.signal_reload(tmp_path) == 4242
    assert sent == [(4242, 0), (4242, signal.SIGHUP)]


def test_a_running_file_of_another_user_says_who_may_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runstate.save_running(tmp_path, default_config(), now=0)

    def denied(self: Path, encoding: str | None = None) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)  # mode 0600, the server's user
    with pytest.raises(ControlError) as caught:
        runstate.read_running(tmp_path)
    assert str(caught.value) == (
        f"cannot read {tmp_path / 'running-config.yaml'}: Permission denied (run this as root "
        "or as the server's user)"
    )


def test_what_a_file_weakens_since_the_last_run(tmp_path: Path) -> None:
    source = tmp_path / "config.yaml"
    source.write_text(TEXT)
    runstate.save_running(tmp_path, load_config(source), now=0)
    source.write_text(TEXT.replace("9-12", "16-17"))
    found = runstate.since_last_run(tmp_path, load_config(source))
    assert found is not None and found.weakens
    other = tmp_path / "other.yaml"
    other.write_text(TEXT)
    assert runstate.since_last_run(tmp_path, load_config(other)) is None  # another file
    assert runstate.since_last_run(tmp_path / "fresh", load_config(source)) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="a start as root")
@pytest.mark.parametrize("server_user", [None, "nobody"])
def test_root_without_server_user_on_another_users_state_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, server_user: str | None
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, pwd.getpwnam("nobody").pw_uid, 0)
    user = f"server: {{user: {server_user}}}\n" if server_user else ""
    config = load_config_text(f"{user}log: {{database: {state / 'filterdns.db'}}}\n")
    with caplog.at_level("WARNING", logger="filterdns.ops.runstate"):
        runstate.check_owner(config)
    warned = "runs as root without server.user" in caplog.text
    assert warned == (server_user is None)
