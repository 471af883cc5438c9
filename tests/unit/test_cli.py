"""`filterdns check`: exit codes and what an admin reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filterdns.cli import main

VALID = """\
server:
  listen: ["127.0.0.1:5353"]
upstreams:
  servers: ["9.9.9.9", "tls://1.1.1.1#cloudflare-dns.com"]
"""

BROKEN = """\
server:
  listen: ["127.0.0.1:99999"]
upstreams:
  servers: ["9.9.9.9"]
  strategy: fastes
cache:
  max_entriez: 10
"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_check_accepts_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", _write(tmp_path, VALID)]) == 0
    out = capsys.readouterr().out
    assert "configuration is valid" in out
    assert "tls://1.1.1.1:853#cloudflare-dns.com" in out


def test_check_lists_every_problem_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-c", _write(tmp_path, BROKEN)]) == 1
    err = capsys.readouterr().err
    assert "3 problem(s)" in err
    assert "server.listen[0]" in err and "(line 2)" in err
    assert "upstreams.strategy" in err and "failover, round_robin, fastest" in err
    assert "cache.max_entriez" in err and "(line 7)" in err


def test_check_json_is_machine_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", "-c", _write(tmp_path, BROKEN)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert [p["line"] for p in report["problems"]] == [2, 5, 7]


def test_check_of_a_missing_file_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-c", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml" in capsys.readouterr().err


def test_config_option_works_before_the_command(tmp_path: Path) -> None:
    assert main(["-c", _write(tmp_path, VALID), "check"]) == 0


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_check_summarises_each_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        VALID
        + "profiles:\n  minh: {age_band: 9-12, allow: [olm.vn]}\n  guests: {age_band: adult}\n"
    )
    text += "default_profile: guests\n"
    assert main(["check", "-c", _write(tmp_path, text), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["default_profile"] == "guests"
    assert summary["profiles"]["minh"].startswith("band 9-12; blocks adult, bypass, chat")
    assert "schedules: bedtime, bedtime" in summary["profiles"]["minh"]
    assert "1 allowed, 0 blocked domains" in summary["profiles"]["minh"]
    assert summary["profiles"]["guests"].endswith("no schedules")


@pytest.mark.parametrize(
    "text", ["", "\n", "# settings to come\n"], ids=["0-bytes", "blank", "comment"]
)
def test_check_refuses_a_file_without_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    assert main(["check", "-c", _write(tmp_path, text)]) == 1
    err = capsys.readouterr().err
    assert "1 problem(s)" in err
    assert "it is never applied" in err
