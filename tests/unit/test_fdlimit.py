"""The open files the caps need, and the soft limit raised to fit them (or a warning)."""

from __future__ import annotations

import logging
import resource
from pathlib import Path

import pytest

from filterdns.config import default_config, load_config, load_config_text
from filterdns.ops import fdlimit
from filterdns.ops.fdlimit import files_needed, fit_open_files

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_the_default_caps_fit_the_usual_limit_of_1024_open_files() -> None:
    # 512 exchanges + 256 TCP clients + 2 listeners x 2 + 2 upstreams x 10 + 64
    needed = files_needed(default_config(is_root=False))
    assert needed == 856
    assert needed < 1024


def test_every_upstream_counts_once_conditional_ones_too() -> None:
    config = load_config_text(
        "upstreams:\n  servers: [192.0.2.1, tls://192.0.2.2#dns.test]\n"
        "  conditional: {home.arpa: 192.0.2.1, lan: 192.0.2.3}\n"
        "  max_outstanding: 1000\n"
    )
    assert files_needed(config) == 1000 + 256 + 4 + 3 * 10 + 64


class Limits:
    """Stands in for the process's RLIMIT_NOFILE."""

    def __init__(self, soft: int, hard: int, *, denied: bool = False) -> None:
        self.soft, self.hard, self.denied = soft, hard, denied

    def get(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def set(self, which: int, limits: tuple[int, int]) -> None:
        if self.denied:
            raise PermissionError("Operation not permitted")  # systemd's SystemCallFilter
        self.soft, self.hard = limits


@pytest.mark.parametrize(
    ("limits", "soft", "warned"),
    [
        pytest.param(Limits(1024, 524288), 1024, False, id="enough"),
        pytest.param(Limits(256, 524288), 856, False, id="raised-to-the-need"),
        pytest.param(Limits(256, 512), 512, True, id="raised-to-the-hard-limit"),
        pytest.param(Limits(256, 524288, denied=True), 256, True, id="raise-denied"),
        pytest.param(Limits(resource.RLIM_INFINITY, resource.RLIM_INFINITY), -1, False,
                     id="unlimited"),
    ],
)  # fmt: skip
def test_the_soft_limit_is_raised_when_it_can_be_else_a_warning_names_the_settings(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    limits: Limits,
    soft: int,
    warned: bool,
) -> None:
    monkeypatch.setattr(fdlimit.resource, "getrlimit", limits.get)
    monkeypatch.setattr(fdlimit.resource, "setrlimit", limits.set)
    with caplog.at_level(logging.WARNING):
        assert fit_open_files(default_config(is_root=False)) == soft
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned
    if warned:
        assert "upstreams.max_outstanding (512)" in warnings[0]
        assert "LimitNOFILE=" in warnings[0]


def test_the_example_configuration_fits_too() -> None:
    assert files_needed(load_config(EXAMPLE)) < 1024
