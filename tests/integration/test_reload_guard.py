"""A configuration file cut short never weakens a running server; an explicit reload still can.

A child's device asks for blocked names in a loop while its configuration file is cut at every
top-level key and emptied to 0 bytes, each picked up by the file watch. Not one blocked name is
answered: an empty or invalid file is rejected, and a file that weakens protection is held back
until someone asks for it (`filterdns reload`, SIGHUP, `App.reload()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import dns.rcode
import pytest

from filterdns.app import watch as app_watch
from filterdns.cli.main import main
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import addresses
from tests.integration.test_lifecycle import _start_serve
from tests.integration.test_reload import ask, running_app

BLOCKED = ("pornhub.com", "bet365.com", "roblox.com")  # adult, gambling, the profile's own list
RECORDS = {(name, "A"): ["198.51.100.9"] for name in (*BLOCKED, "tiktok.com", "example.com")}

# Upstreams first: no cut ever falls back to the embedded (internet) resolvers, even if the
# guard failed. The child is this machine (127.0.0.1); everyone else is a grown-up.
CHILD = """\
upstreams:
  servers: ["{upstream}"]
  timeout: 1s
server:
  listen: ["127.0.0.1:0"]
  rate_limit: null    # the child asks as fast as it can
lists:
  download_defaults: false
log:
  database: {state}/filterdns.db
profiles:
  kid:
    age_band: 16-17
    block: [roblox.com]
  grownups: {{age_band: adult}}
clients:
  - {{name: kid-laptop, ip: 127.0.0.1, profile: kid}}
default_profile: grownups
blocking:
  bypass_protection: true
report: {{lang: en}}
"""


def child_config(upstream: FakeUpstream, state: Path) -> str:
    return CHILD.format(upstream=upstream.address, state=state)


def cuts(text: str) -> list[str]:
    """The text cut before each top-level key (longest first), then to 0 bytes."""
    lines = text.splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if i and line[:1].isalnum()]
    return ["".join(lines[:end]) for end in reversed(ends)] + [""]


class Child:
    """Asks for the blocked names in a loop and keeps every answer that was not a block."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked = 0
        self.answered: list[tuple[str, str]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while not self._stop.is_set():
            for name in BLOCKED:
                reply = await ask("127.0.0.1", self.port, name)
                if reply.rcode() != dns.rcode.NXDOMAIN or reply.answer:
                    self.answered.append((name, dns.rcode.to_text(reply.rcode())))
                self.asked += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


@pytest.fixture
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file watch looks every 50 ms (a second in production): the same code, sooner."""
    monkeypatch.setattr(app_watch, "CONFIG_POLL", 0.05)
    monkeypatch.setattr(app_watch, "CONFIG_SETTLE", 0.05)


@pytest.mark.usefixtures("quick_watch")
async def test_a_file_cut_short_never_unblocks_a_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        text = child_config(upstream, tmp_path / "state")
        path.write_text(text)
        async with running_app(path) as (app, port):
            child = Child(port)
            child.start()
            try:
                for tried, cut in enumerate(cuts(text), 1):
                    path.write_text(cut)
                    await asyncio.wait_for(app.wait_for_reloads(tried), 10)
                    for name in BLOCKED:  # at least one full round on every cut
                        assert (await ask("127.0.0.1", port, name)).rcode() == dns.rcode.NXDOMAIN
            finally:
                await child.stop()
            held, rejected, applied = app.held_reloads, app.rejected_reloads, app.reloads
            metrics = app.metrics.render()
    assert child.answered == []
    assert child.asked > 3 * len(cuts(text))
    # Every cut was tried once. Cut before `report` or `blocking`, nothing protective is lost,
    # so those are applied; 0 bytes is rejected; every cut that drops the child's entry is held.
    assert applied + rejected + held == len(cuts(text))
    assert applied >= 2 and rejected >= 1 and held >= 4
    assert f'filterdns_reloads_total{{result="held"}} {held}' in metrics
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    summaries = [m for m in warnings if m.startswith(f"reload of {path} held back")]
    assert len(summaries) == held
    assert all("weakens protection for kid-laptop" in m for m in summaries)
    assert all(m.endswith("filterdns reload (or systemctl reload filterdns)") for m in summaries)
    lost = [m for m in warnings if m.startswith("held back: client kid-laptop (no longer in the")]
    assert len(lost) == held
    assert all("(default): " in m and "no longer blocks roblox.com" in m for m in lost)
    assert "the file is empty (0 bytes)" in caplog.text


@pytest.mark.usefixtures("quick_watch")
async def test_the_watch_applies_more_protection_and_holds_back_less(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="filterdns.app")
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        text = child_config(upstream, tmp_path / "state")
        path.write_text(text)
        async with running_app(path) as (app, port):
            path.write_text(text.replace("[roblox.com]", "[roblox.com, tiktok.com]"))
            await asyncio.wait_for(app.wait_for_reloads(1), 10)
            more = await ask("127.0.0.1", port, "tiktok.com")
            path.write_text(text.replace("[roblox.com]", "[]"))  # a deliberate weakening
            await asyncio.wait_for(app.wait_for_reloads(2), 10)
            held = await ask("127.0.0.1", port, "roblox.com")
            assert await app.reload()  # explicit, as SIGHUP and `filterdns reload` do
            applied = await ask("127.0.0.1", port, "roblox.com")
            counts = (app.reloads, app.held_reloads)
    assert more.rcode() == dns.rcode.NXDOMAIN
    assert held.rcode() == dns.rcode.NXDOMAIN
    assert addresses(applied) == ["198.51.100.9"]
    assert counts == (2, 1)
    assert "reload: profile kid: now blocks tiktok.com" in caplog.text
    assert "held back: profile kid: no longer blocks roblox.com, tiktok.com" in caplog.text
    assert "reload: applying changes that weaken protection for kid-laptop" in caplog.text


async def test_filterdns_reload_applies_what_the_running_server_held_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        state = tmp_path / "state"
        path = tmp_path / "config.yaml"
        text = child_config(upstream, state)
        path.write_text(text)
        process, port, _seen = await _start_serve(path)
        assert process.stderr is not None
        log: list[str] = []

        async def until(words: str) -> None:
            """Read the server's log up to the next line that says `words`."""
            while True:
                line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
                assert line, f"filterdns exited: {log}"
                log.append(line)
                if words in line:
                    return

        try:
            pid_file, running = state / "filterdns.pid", state / "running-config.yaml"
            assert pid_file.read_text() == f"{process.pid}\n"
            assert running.read_text().partition("\n")[2] == text
            held = f"reload of {path} held back"
            for cut, outcome in (("", "reload rejected"), (cuts(text)[-2], held)):
                path.write_text(cut)
                await until(outcome)
                assert (await ask("127.0.0.1", port, "pornhub.com")).rcode() == dns.rcode.NXDOMAIN
            weaker = text.replace("[roblox.com]", "[]")
            path.write_text(weaker)
            await until(held)
            assert (await ask("127.0.0.1", port, "roblox.com")).rcode() == dns.rcode.NXDOMAIN
            code = await asyncio.to_thread(main, ["reload", "-c", str(path)])
            reply = await ask("127.0.0.1", port, "roblox.com")
            assert running.read_text().partition("\n")[2] == weaker
            await until(f"reloaded {path}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 15)
        out = capsys.readouterr().out
    assert code == 0
    assert addresses(reply) == ["198.51.100.9"]
    assert out.splitlines() == [
        "changes to protection against the running configuration:",
        "  WEAKENS  profile kid: no longer blocks roblox.com",
        "weakens protection for kid-laptop",
        f"asked filterdns (process {process.pid}) to reload {path}",
        "applied",
    ]
    assert any("reload: applying changes that weaken protection for kid-laptop" in x for x in log)
    assert process.returncode == 0
    assert not pid_file.exists()  # a clean stop leaves no pid to signal


async def test_a_start_says_what_the_file_weakens_since_the_last_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        text = child_config(upstream, tmp_path / "state")
        path.write_text(text)
        async with running_app(path):
            pass
        assert "since the last run" not in caplog.text
        # Cut short while the server was down (after `log:`, so the state stays where it was).
        path.write_text(next(cut for cut in cuts(text) if cut.endswith("filterdns.db\n")))
        async with running_app(path):
            pass
    assert (
        "the configuration weakens protection since the last run: client kid-laptop (no longer "
        "in the file): profile kid -> "
    ) in caplog.text
