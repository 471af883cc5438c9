"""Children's requests as alerts: `request` in an alert rule's categories, and
`Alerter.notify` recording each request and handing it to the rules that name it."""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest

from filterdns.config import load_config_text
from filterdns.errors import ConfigError
from filterdns.querylog.alerts import Alerter, AlertRule
from filterdns.querylog.notices import REQUEST, Notice


def config_with(alerts: str) -> Any:
    return load_config_text(textwrap.dedent(alerts), source="<test>")


def test_an_alert_rule_may_name_the_childrens_requests() -> None:
    config = config_with("alerts: [{name: tell-mum, categories: [request, adult], command: x}]")
    assert config.alerts[0].categories == (REQUEST, "adult")


def test_a_misspelt_request_category_says_what_is_accepted() -> None:
    with pytest.raises(ConfigError, match=r"\"requests\" is not a category.*or request for the"):
        config_with("alerts: [{categories: [requests], command: x}]")


class Recorder:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, **row: Any) -> None:
        self.rows.append(row)
        self.arrived.set()


async def test_a_request_without_a_rule_for_it_is_still_recorded() -> None:
    record = Recorder()
    adult = AlertRule("adult", ("adult",), threshold=1, within=60, command="true")
    alerter = Alerter([adult], record=record, clock=lambda: 1000.0,
                      display_names={"minh": "Minh (lớp 5)"})  # fmt: skip
    alerter.notify(REQUEST, "minh", "request #1: minh-phone asks to open casino.example")
    await asyncio.wait_for(record.arrived.wait(), 5)
    await alerter.close()
    [row] = record.rows
    assert (row["rule"], row["categories"], row["profile"], row["count"]) == (
        "request", "request", "minh", 1,
    )  # fmt: skip
    assert row["delivered"] is False
    assert row["error"] == "no alert rule has category request"
    assert alerter.fired == 0  # a request is no fired alert of the `adult` rule


async def test_a_closed_alerter_sends_no_more_notices() -> None:
    record = Recorder()
    alerter = Alerter([], record=record)
    await alerter.close()
    alerter.notify(REQUEST, "minh", "late")
    assert alerter.running == 0 and record.rows == []


def test_the_notice_carries_what_an_alert_carries_and_its_kind() -> None:
    notice = Notice(REQUEST, "minh", 5.0, "asks", ("casino.example",), ("minh-phone",), "Minh")
    payload = notice.payload("tell-mum")
    assert payload["kind"] == "request" and payload["rule"] == "tell-mum"
    assert payload["profile_display_name"] == "Minh" and payload["names"] == ["casino.example"]
    assert payload["categories"] == ["request"] and payload["count"] == 1
