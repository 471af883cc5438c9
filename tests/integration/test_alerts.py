"""Alerts: sliding-window counting, rate limiting, and the command and webhook actions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from filterdns.querylog.alerts import Alerter, AlertRule


@dataclass(frozen=True, slots=True)
class Lookup:
    """A logged lookup, as the query log hands it to the alerts."""

    ts: float
    name: str
    category: str | None = "adult"
    profile: str | None = "minh"
    client: str = "192.168.1.20"
    client_name: str | None = "minh-tablet"
    kind: str = "blocked"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """Stands in for the store's put_alert; `done` is set once `expect` alerts arrived."""

    expect: int = 1
    alerts: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, **fields: Any) -> None:
        self.alerts.append(fields)
        if len(self.alerts) >= self.expect:
            self.done.set()

    async def wait(self) -> None:
        await asyncio.wait_for(self.done.wait(), 20)


def rule(**overrides: Any) -> AlertRule:
    settings: dict[str, Any] = {
        "name": "alert 1",
        "categories": ("adult",),
        "threshold": 3,
        "within": 600.0,
    }
    settings.update(overrides)
    return AlertRule(**settings)


def feed(alerter: Alerter, clock: Clock, names: list[str], step: float = 1.0, **kw: Any) -> None:
    """One lookup per name, `step` seconds apart."""
    for name in names:
        alerter.observe(Lookup(ts=clock.now, name=name, **kw))
        clock.now += step


# --- counting -------------------------------------------------------------------------------


async def test_threshold_within_window_fires_once() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule()], record=record, clock=clock)
    feed(alerter, clock, ["pornhub.com", "xvideos.com", "pornhub.com"], step=60)
    await alerter.close()
    assert alerter.fired == 1
    assert alerter.failed == 0
    [alert] = record.alerts
    assert alert["rule"] == "alert 1"
    assert alert["profile"] == "minh"
    assert alert["categories"] == "adult"
    assert alert["count"] == 3
    assert alert["window"] == 600.0
    assert alert["delivered"] is True
    assert alert["error"] is None
    assert alert["ts"] == clock.now - 60  # when the third lookup arrived
    assert alert["message"] == (
        "3 blocked adult lookups for minh within 10 minutes (pornhub.com, xvideos.com)"
    )


async def test_an_alert_calls_the_child_by_the_profile_display_name() -> None:
    clock, record = Clock(), Recorder()
    names = {"minh": "Minh (lớp 6A)"}
    alerter = Alerter([rule()], record=record, clock=clock, display_names=names)
    feed(alerter, clock, ["pornhub.com", "xvideos.com", "pornhub.com"], step=60)
    await alerter.close()
    [alert] = record.alerts
    assert alert["profile"] == "minh"
    assert alert["message"] == (
        "3 blocked adult lookups for Minh (lớp 6A) within 10 minutes (pornhub.com, xvideos.com)"
    )


async def test_below_threshold_does_not_fire() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule()], record=record, clock=clock)
    feed(alerter, clock, ["a.example", "b.example"])
    await alerter.close()
    assert alerter.fired == 0
    assert record.alerts == []


async def test_lookups_spread_beyond_the_window_do_not_fire() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule(within=10.0)], record=record, clock=clock)
    feed(alerter, clock, [f"n{i}.example" for i in range(20)], step=5.01)  # never 3 in 10 s
    await alerter.close()
    assert alerter.fired == 0
    # ... but three within the window do, even after the old ones slid out
    alerter = Alerter([rule(within=10.0)], record=record, clock=clock)
    feed(alerter, clock, ["x.example"], step=30)
    feed(alerter, clock, ["y.example", "z.example", "w.example"], step=4.9)
    await alerter.close()
    assert alerter.fired == 1
    assert record.alerts[0]["message"].startswith(
        "3 blocked adult lookups for minh within 10 seconds"
    )


async def test_per_profile_counts_each_profile_separately() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule()], record=record, clock=clock)
    for i in range(2):
        feed(alerter, clock, [f"a{i}.example"], profile="minh")
        feed(alerter, clock, [f"b{i}.example"], profile="an")
        feed(alerter, clock, [f"c{i}.example"], profile=None)
    await alerter.close()
    assert alerter.fired == 0  # two each: nobody reached three
    alerter = Alerter([rule()], record=record, clock=clock)
    feed(alerter, clock, ["a.example", "b.example", "c.example"], profile="an")
    feed(alerter, clock, ["d.example", "e.example", "f.example"], profile=None)
    await alerter.close()
    assert alerter.fired == 2
    assert [a["profile"] for a in record.alerts] == ["an", None]
    assert "from devices without a profile" in record.alerts[1]["message"]


async def test_all_profiles_counted_together() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule(per_profile=False)], record=record, clock=clock)
    feed(alerter, clock, ["a.example"], profile="minh")
    feed(alerter, clock, ["b.example"], profile="an")
    feed(alerter, clock, ["c.example"], profile=None)
    await alerter.close()
    assert alerter.fired == 1
    [alert] = record.alerts
    assert alert["profile"] is None
    assert "across all profiles" in alert["message"]


async def test_other_categories_and_kinds_are_ignored() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule()], record=record, clock=clock)
    feed(alerter, clock, ["bet.example"] * 5, category="gambling")
    feed(alerter, clock, ["none.example"] * 5, category=None)
    feed(alerter, clock, ["safe.example"] * 5, kind="rewritten")
    feed(alerter, clock, ["ok.example"] * 5, kind="resolved")
    await alerter.close()
    assert alerter.fired == 0
    assert record.alerts == []


async def test_bypass_rule_counts_bypass_attempts() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter(
        [rule(name="bypass", categories=("adult", "bypass"), threshold=2)],
        record=record,
        clock=clock,
    )
    feed(alerter, clock, ["use-application-dns.net"], category="bypass")
    feed(alerter, clock, ["mask.icloud.com"], category="bypass")
    feed(alerter, clock, ["bet.example"], category="gambling")
    await alerter.close()
    assert alerter.fired == 1
    [alert] = record.alerts
    assert alert["rule"] == "bypass"
    assert alert["categories"] == "adult,bypass"
    assert alert["message"].startswith("2 blocked adult or bypass lookups for minh")


async def test_several_rules_count_independently() -> None:
    clock, record = Clock(), Recorder()
    rules = [rule(name="quick", threshold=2), rule(name="slow", threshold=4)]
    alerter = Alerter(rules, record=record, clock=clock)
    feed(alerter, clock, ["a.example", "b.example", "c.example", "d.example"])
    await alerter.close()
    assert sorted(a["rule"] for a in record.alerts) == ["quick", "slow"]  # quick then silent


async def test_burst_fires_once_per_window() -> None:
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule(within=60.0)], record=record, clock=clock)
    feed(alerter, clock, [f"n{i}.example" for i in range(100)], step=0.1)
    assert alerter.fired == 1
    clock.now += 45  # still within a minute of the firing: silent
    feed(alerter, clock, [f"m{i}.example" for i in range(100)], step=0.0)
    assert alerter.fired == 1
    clock.now += 60  # the window has passed: a new burst fires again
    feed(alerter, clock, [f"k{i}.example" for i in range(100)], step=0.0)
    assert alerter.fired == 2
    await alerter.close()
    assert len(record.alerts) == 2
    assert all(a["count"] == 3 for a in record.alerts)


async def test_observe_never_raises() -> None:
    alerter = Alerter([rule()])
    alerter.observe(object())  # type: ignore[arg-type]  # a broken record is logged, not raised
    await alerter.close()
    assert alerter.fired == 0


def test_firing_without_an_event_loop_counts_a_failure() -> None:
    clock = Clock()
    alerter = Alerter([rule(threshold=1)], clock=clock)
    feed(alerter, clock, ["a.example"])
    assert (alerter.fired, alerter.failed) == (1, 1)


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        rule(threshold=0)
    with pytest.raises(ValueError, match="positive"):
        rule(within=0)


def test_rule_from_config_fields() -> None:
    from filterdns.config import AlertConfig

    config = AlertConfig(name="alert 2", categories=("adult",), webhook="http://x.example/")
    assert AlertRule.of(config) == AlertRule(
        name="alert 2", categories=("adult",), threshold=3, within=600.0,
        webhook="http://x.example/",
    )  # fmt: skip


# --- the command action ---------------------------------------------------------------------


def python(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


async def test_command_receives_the_event_as_json(tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    code = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule(command=python(code))], record=record, clock=clock)
    feed(alerter, clock, ["pornhub.com", "xvideos.com", "pornhub.com"], step=2)
    await record.wait()
    await alerter.close()
    assert alerter.fired == 1
    event = json.loads(out.read_text())
    assert event["rule"] == "alert 1"
    assert event["profile"] == "minh"
    assert event["profile_display_name"] == "minh"  # no display_name: the name itself
    assert event["categories"] == ["adult"]
    assert event["count"] == 3
    assert event["window_seconds"] == 600.0
    assert event["last_ts"] - event["first_ts"] == 4
    assert event["names"] == ["pornhub.com", "xvideos.com"]
    assert event["clients"] == ["minh-tablet"]
    assert event["message"] == (
        "3 blocked adult lookups for minh within 10 minutes (pornhub.com, xvideos.com)"
    )
    assert record.alerts[-1]["delivered"] is True


async def test_event_names_and_clients_are_distinct_and_capped(tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    code = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    clock, record = Clock(), Recorder()
    alerter = Alerter([rule(threshold=30, command=python(code))], record=record, clock=clock)
    for i in range(15):
        feed(alerter, clock, [f"site{i}.example"], client_name=None, client=f"10.0.0.{i % 2}")
        feed(alerter, clock, [f"site{i}.example"])
    await record.wait()
    await alerter.close()
    event = json.loads(out.read_text())
    assert event["names"] == [f"site{i}.example" for i in range(10)]
    assert event["clients"] == ["10.0.0.0", "minh-tablet", "10.0.0.1"]
    assert event["message"].endswith("(site0.example, site1.example, site2.example, ...)")


async def test_command_past_its_timeout_is_killed_and_fails() -> None:
    clock, record = Clock(), Recorder()
    command = python("import time; time.sleep(30)")
    alerter = Alerter([rule(threshold=1, command=command, timeout=0.3)], record=record, clock=clock)
    loop = asyncio.get_running_loop()
    started = loop.time()
    feed(alerter, clock, ["a.example"])
    await record.wait()
    await alerter.close()
    assert loop.time() - started < 10
    [alert] = record.alerts
    assert alert["delivered"] is False
    assert "timed out after 0.3 s" in alert["error"]
    assert alerter.failed == 1


async def test_command_nonzero_exit_fails_with_the_code() -> None:
    clock, record = Clock(), Recorder()
    command = python("import sys; sys.stdin.read(); sys.stderr.write('no phone\\n'); sys.exit(3)")
    alerter = Alerter([rule(threshold=1, command=command)], record=record, clock=clock)
    feed(alerter, clock, ["a.example"])
    await record.wait()
    await alerter.close()
    [alert] = record.alerts
    assert alert["delivered"] is False
    assert "exited with status 3: no phone" in alert["error"]
    assert alerter.failed == 1


async def test_missing_command_fails(tmp_path: Path) -> None:
    clock, record = Clock(), Recorder()
    command = shlex.join([str(tmp_path / "no-such-notifier"), "--now"])
    alerter = Alerter([rule(threshold=1, command=command)], record=record, clock=clock)
    feed(alerter, clock, ["a.example"])
    await record.wait()
    await alerter.close()
    assert "could not start" in record.alerts[0]["error"]


async def test_close_cancels_a_delivery_that_outlasts_the_grace() -> None:
    clock, record = Clock(), Recorder()
    command = python("import time; time.sleep(30)")
    alerter = Alerter([rule(threshold=1, command=command, timeout=30)], record=record, clock=clock)
    feed(alerter, clock, ["a.example"])
    assert alerter.running == 1
    await alerter.close(grace=0.2)
    assert alerter.running == 0
    assert record.alerts == []  # cancelled at shutdown, the process killed and reaped
    feed(alerter, clock, ["b.example"])  # closed: no more firing
    assert alerter.fired == 1


# --- the webhook action ---------------------------------------------------------------------


@dataclass
class Hook:
    """A loopback HTTP server recording POST bodies; answers `statuses` in turn, then 200."""

    httpd: ThreadingHTTPServer
    thread: threading.Thread
    statuses: list[int] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    types: list[str | None] = field(default_factory=list)

    def url(self, path: str = "/alert") -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"


@contextlib.contextmanager
def hook_server(statuses: list[int] | None = None) -> Iterator[Hook]:
    holder: list[Hook] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            hook = holder[0]
            length = int(self.headers.get("Content-Length", "0"))
            hook.bodies.append(self.rfile.read(length))
            hook.types.append(self.headers.get("Content-Type"))
            status = hook.statuses.pop(0) if hook.statuses else 200
            body = b"ok" if status == 200 else b"try later"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), name="hook-server")
    hook = Hook(httpd, thread, list(statuses or []))
    holder.append(hook)
    thread.start()
    try:
        yield hook
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhooks go straight to the loopback server whatever proxy the environment names."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)


async def test_webhook_receives_the_event_as_json() -> None:
    clock, record = Clock(), Recorder()
    with hook_server() as hook:
        alerter = Alerter([rule(webhook=hook.url())], record=record, clock=clock)
        feed(alerter, clock, ["pornhub.com", "xvideos.com", "pornhub.com"])
        await record.wait()
        await alerter.close()
    [body] = hook.bodies
    assert hook.types == ["application/json"]
    event = json.loads(body)
    assert event["rule"] == "alert 1"
    assert event["count"] == 3
    assert event["names"] == ["pornhub.com", "xvideos.com"]
    assert event["message"].startswith("3 blocked adult lookups for minh within 10 minutes")
    assert record.alerts[0]["delivered"] is True


async def test_command_and_webhook_both_run() -> None:
    clock, record = Clock(), Recorder()
    with hook_server() as hook:
        command = python("import sys; sys.exit(len(sys.stdin.read()) == 0)")
        alerter = Alerter(
            [rule(threshold=1, command=command, webhook=hook.url())], record=record, clock=clock
        )
        feed(alerter, clock, ["a.example"])
        await record.wait()
        await alerter.close()
    assert len(hook.bodies) == 1
    assert record.alerts[0]["delivered"] is True


async def test_webhook_5xx_is_retried_until_it_succeeds() -> None:
    clock, record = Clock(), Recorder()
    with hook_server([500, 503]) as hook:
        alerter = Alerter(
            [rule(threshold=1, webhook=hook.url())], record=record, clock=clock, backoff=0.01
        )
        feed(alerter, clock, ["a.example"])
        await record.wait()
        await alerter.close()
    assert len(hook.bodies) == 3
    assert len({bytes(b) for b in hook.bodies}) == 1  # the same event each time
    assert record.alerts[0]["delivered"] is True
    assert alerter.failed == 0


async def test_webhook_4xx_is_not_retried() -> None:
    clock, record = Clock(), Recorder()
    with hook_server([404]) as hook:
        alerter = Alerter(
            [rule(threshold=1, webhook=hook.url())], record=record, clock=clock, backoff=0.01
        )
        feed(alerter, clock, ["a.example"])
        await record.wait()
        await alerter.close()
    assert len(hook.bodies) == 1
    [alert] = record.alerts
    assert alert["delivered"] is False
    assert "answered 404" in alert["error"]


async def test_webhook_5xx_every_time_fails_after_the_retries() -> None:
    clock, record = Clock(), Recorder()
    with hook_server([500] * 10) as hook:
        alerter = Alerter(
            [rule(threshold=1, webhook=hook.url(), retries=2)],
            record=record,
            clock=clock,
            backoff=0.01,
        )
        feed(alerter, clock, ["a.example"])
        await record.wait()
        await alerter.close()
    assert len(hook.bodies) == 3
    assert "answered 500" in record.alerts[0]["error"]
    assert "after 3 attempts" in record.alerts[0]["error"]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_webhook_fails_after_the_retries() -> None:
    clock, record = Clock(), Recorder()
    url = f"http://127.0.0.1:{closed_port()}/alert"
    alerter = Alerter(
        [rule(threshold=1, webhook=url, retries=2, timeout=2)],
        record=record,
        clock=clock,
        backoff=0.01,
    )
    feed(alerter, clock, ["a.example"])
    await record.wait()
    await alerter.close()
    [alert] = record.alerts
    assert alert["delivered"] is False
    assert "unreachable" in alert["error"]
    assert "after 3 attempts" in alert["error"]
    assert (alerter.fired, alerter.failed) == (1, 1)


async def test_record_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    calls: list[str] = []

    async def broken(**fields: Any) -> None:
        calls.append(fields["rule"])
        raise RuntimeError("database is locked")

    alerter = Alerter([rule(threshold=1)], record=broken, clock=clock)
    feed(alerter, clock, ["a.example"])
    await alerter.close()
    assert calls == ["alert 1"]
    assert "could not store the fired alert" in caplog.text
