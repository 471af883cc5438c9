"""The real command: `filterdns serve` in its own process, stopped by a signal."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import signal
import sys
from pathlib import Path

import dns.asyncquery
import dns.message
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import addresses, config_for

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


async def _start_serve(
    config: Path, *options: str
) -> tuple[asyncio.subprocess.Process, int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "filterdns", "serve", "-c", str(config), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=20)).decode()
        assert line, f"filterdns exited before listening: {seen}"
        seen.append(line)
        match = LISTENING.search(line)
        if match:
            return process, int(match.group(1)), seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_serve_answers_then_exits_cleanly_on_signal(tmp_path: Path, sig: int) -> None:
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as upstream:
        upstream.delay = 0.5
        config = tmp_path / "config.yaml"
        config.write_text(config_for(upstream.address))
        process, port, _ = await _start_serve(config)
        query = dns.message.make_query("example.com", "A")
        in_flight = asyncio.create_task(
            dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)
        )
        await upstream.wait_for_calls(1)  # the query is in flight inside the proxy
        process.send_signal(sig)
        reply = await in_flight  # finished, not dropped
        code = await asyncio.wait_for(process.wait(), timeout=15)
        assert process.stderr is not None
        rest = (await process.stderr.read()).decode()
    assert addresses(reply) == ["93.184.216.34"]
    assert code == 0, rest
    assert "Traceback" not in rest


async def test_serve_with_a_broken_config_exits_1_naming_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  listen: [127.0.0.1:0]\nupstreams:\n  strategy: fastes\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "filterdns", "serve", "-c", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 1
    assert "upstreams.strategy" in err.decode()
    assert "line 4" in err.decode()


async def test_serve_tells_systemd_when_ready_reloading_and_stopping(tmp_path: Path) -> None:
    import socket

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    loop = asyncio.get_running_loop()
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as upstream:
        config = tmp_path / "config.yaml"
        config.write_text(config_for(upstream.address))
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "filterdns", "serve", "-c", str(config), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            ready = await asyncio.wait_for(loop.sock_recv(notify, 4096), 20)
            process.send_signal(signal.SIGHUP)
            reloading = await asyncio.wait_for(loop.sock_recv(notify, 4096), 20)
            reloaded = await asyncio.wait_for(loop.sock_recv(notify, 4096), 20)
            process.send_signal(signal.SIGTERM)
            stopping = await asyncio.wait_for(loop.sock_recv(notify, 4096), 20)
            assert await asyncio.wait_for(process.wait(), 15) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            notify.close()
    assert ready.startswith(b"READY=1\n") and b"STATUS=serving on 127.0.0.1:" in ready
    assert reloading.startswith(b"RELOADING=1\nMONOTONIC_USEC=")
    assert reloaded.startswith(b"READY=1\n")
    assert stopping.startswith(b"STOPPING=1")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
async def test_started_as_root_it_runs_as_the_configured_user_after_binding(
    tmp_path: Path,
) -> None:
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as upstream:
        config = tmp_path / "config.yaml"
        text = config_for(upstream.address).replace(
            'server:\n  listen: ["127.0.0.1:0"]\n',
            'server:\n  listen: ["127.0.0.1:0"]\n  user: nobody\n',
        )
        config.write_text(text + f"log: {{database: {tmp_path / 'state' / 'filterdns.db'}}}\n")
        process, port, _ = await _start_serve(config)
        try:
            status = await asyncio.to_thread(Path(f"/proc/{process.pid}/status").read_text)
            uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
            query = dns.message.make_query("example.com", "A")
            reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 15)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert uids.split()[1:] == [str(nobody)] * 4  # real, effective, saved and filesystem
    assert addresses(reply) == ["93.184.216.34"]


async def test_json_log_lines(tmp_path: Path) -> None:
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as upstream:
        config = tmp_path / "config.yaml"
        config.write_text(config_for(upstream.address))
        process, _port, seen = await _start_serve(config, "--log-format", "json")
        process.terminate()
        assert process.stderr is not None
        rest = (await asyncio.wait_for(process.stderr.read(), 15)).decode()
        await process.wait()
    lines = [json.loads(line) for line in [*seen, *rest.splitlines()] if line.strip()]
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    messages = [line["msg"] for line in lines]
    assert any("listening on 127.0.0.1:" in m for m in messages)
    assert messages[-1] == "stopped"
