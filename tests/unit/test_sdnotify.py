"""The systemd notification protocol: exact datagrams on a real socket, silence without one."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from filterdns.ops import sdnotify


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket bound in tmp_path and named in $NOTIFY_SOCKET, like systemd's."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def _receive(sock: socket.socket) -> bytes:
    return sock.recv(4096)


def test_notify_sends_the_state_as_one_datagram(receiver: socket.socket) -> None:
    assert sdnotify.notify("READY=1\nSTATUS=serving") is True
    assert _receive(receiver) == b"READY=1\nSTATUS=serving"


def test_ready_with_and_without_status(receiver: socket.socket) -> None:
    assert sdnotify.ready()
    assert _receive(receiver) == b"READY=1"
    assert sdnotify.ready("listening on 0.0.0.0:53")
    assert _receive(receiver) == b"READY=1\nSTATUS=listening on 0.0.0.0:53"


def test_reloading_carries_the_monotonic_clock(receiver: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    sent = _receive(receiver)
    match = re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=reloading", sent)
    assert match is not None
    assert before <= int(match.group(1)) <= after
    assert sdnotify.reloading(None)
    assert re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=\d+", _receive(receiver))


def test_stopping_and_status(receiver: socket.socket) -> None:
    assert sdnotify.stopping()
    assert _receive(receiver) == b"STOPPING=1\nSTATUS=stopping"
    assert sdnotify.stopping(None)
    assert _receive(receiver) == b"STOPPING=1"
    assert sdnotify.status("2 problems\nin the file")
    assert _receive(receiver) == b"STATUS=2 problems in the file"  # one assignment, one line


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"filterdns-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready("up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.ready() is False
    assert sdnotify.reloading() is False
    assert sdnotify.stopping() is False
    assert sdnotify.status("x") is False


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1234"])
def test_unusable_socket_names_are_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert sdnotify.notify("READY=1") is False


def test_a_missing_socket_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert sdnotify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "@filterdns-nobody-listens-here")
    assert sdnotify.stopping() is False


def test_a_socket_that_is_not_a_datagram_socket_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stream"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        sock.listen()
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / ("x" * 200)))  # longer than sun_path
    assert sdnotify.notify("READY=1") is False
