"""`filterdns check`: exit codes and what an admin reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filterdns.cli.main import dig_hint, main
from filterdns.config import STATE_DIR_ENV, ListenAddress, default_config, load_config
from filterdns.ops import runstate

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
    text += "default_profile: guests\nlocal_records: {printer.lan: 10.0.0.5, nas.lan: 10.0.0.6}\n"
    assert main(["check", "-c", _write(tmp_path, text), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["default_profile"], summary["local_records"]) == ("guests", 2)
    assert summary["profiles"]["minh"].startswith(
        "band 9-12; blocks adult, adult-suspect, bypass, chat"
    )
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


# check --against and reload: the protection difference

FAMILY = """\
server:
  listen: ["127.0.0.1:5353"]
log: {{database: {state}/filterdns.db}}
profiles:
  minh: {{age_band: 9-12, block: [roblox.com]}}
  guests: {{age_band: 13-15}}
clients:
  - {{name: minh-tablet, ip: 192.168.1.5, profile: minh}}
default_profile: guests
"""


def _family(tmp_path: Path, name: str, edit: tuple[str, str] = ("", "")) -> Path:
    path = tmp_path / name
    text = FAMILY.format(state=tmp_path / "state")
    path.write_text(text.replace(*edit) if edit[0] else text)
    return path


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    """The family's file, and an edit that drops the tablet's entry and blocks one more name."""
    old = _family(tmp_path, "old.yaml")
    new = _family(
        tmp_path, "new.yaml", ("  - {name: minh-tablet, ip: 192.168.1.5, profile: minh}\n", "")
    )
    new.write_text(new.read_text().replace("[roblox.com]", "[roblox.com, tiktok.com]"))
    return old, new


def test_check_against_a_file_shows_the_weakening_changes_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _pair(tmp_path)
    assert main(["check", "-c", str(new), "--against", str(old)]) == 0  # valid, even if weaker
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"changes to protection against {old}:"
    assert lines[1].startswith(
        "  WEAKENS  client minh-tablet (no longer in the file): profile minh -> guests (default): "
        "age band 9-12 -> 13-15; loses categories social, chat;"
    )
    assert lines[2] == "           profile minh: now blocks tiktok.com"
    assert lines[3:] == [
        "weakens protection for minh-tablet",
        "dry run: nothing was applied",
        "warning: no clients: every device gets the guests default",
        "configuration is valid",
    ]


def test_check_against_json_is_for_scripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _pair(tmp_path)
    assert main(["check", "--json", "-c", str(new), "--against", str(old)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["valid"], report["problems"]) == (True, [])
    difference = report["difference"]
    assert difference["weakens"] is True and difference["who"] == ["minh-tablet"]
    assert [(c["subject"], c["weakens"]) for c in difference["changes"]] == [
        ("client minh-tablet", True),
        ("profile minh", False),
    ]
    assert difference["changes"][1] == {
        "subject": "profile minh",
        "text": "profile minh: now blocks tiktok.com",
        "weakens": False,
        "who": [],
    }


def test_check_against_the_running_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _pair(tmp_path)
    runstate.save_running(tmp_path / "state", load_config(old), now=1_795_000_000)
    assert main(["check", "-c", str(new), "--against"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"changes to protection against the running configuration ({old}, "
        "2026-11-18T11:06:40.000000Z):\n  WEAKENS  client minh-tablet"
    )
    assert main(["check", "-c", str(old), "--against", "running"]) == 0
    assert "  no change to protection\n" in capsys.readouterr().out


def test_check_against_nothing_running_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither in the file's state directory nor in the default one (the session's, shared).
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "default-state"))
    _old, new = _pair(tmp_path)
    assert main(["check", "-c", str(new), "--against", "running"]) == 1
    err = capsys.readouterr().err
    assert "cannot compare: no running configuration:" in err
    assert "Traceback" not in err


def test_check_against_an_invalid_file_cannot_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _old, new = _pair(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    assert main(["check", "-c", str(new), "--against", str(broken)]) == 1
    assert f"{broken}: 3 problem(s); cannot compare" in capsys.readouterr().err


def test_check_of_an_invalid_file_has_no_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _new = _pair(tmp_path)
    assert main(["check", "--json", "-c", _write(tmp_path, ""), "--against", str(old)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["valid"], report["difference"]) == (False, None)
    assert report["problems"][0]["message"].startswith("the file is empty (0 bytes)")


def test_check_warns_when_every_device_gets_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = default_config().default_profile
    assert main(["check", "-c", _write(tmp_path, VALID)]) == 0
    out = capsys.readouterr().out
    assert f"warning: no profiles: every device gets the built-in {default} profile" in out
    assert f"warning: no clients: every device gets the {default} default" in out
    old = _family(tmp_path, "old.yaml")
    assert main(["check", "-c", str(old)]) == 0
    assert "warning" not in capsys.readouterr().out


def test_reload_without_a_running_server_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _new = _pair(tmp_path)
    assert main(["reload", "-c", str(old)]) == 1
    captured = capsys.readouterr()
    assert "no filterdns server is running here" in captured.err
    assert "filterdns.pid does not exist" in captured.err
    assert "Traceback" not in captured.err


def test_reload_of_an_invalid_file_keeps_the_running_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reload", "-c", _write(tmp_path, "")]) == 1
    err = capsys.readouterr().err
    assert "1 problem(s); the running server keeps its rules" in err
    assert "is empty (0 bytes)" in err


def test_reload_refuses_a_file_the_server_does_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _pair(tmp_path)
    runstate.save_running(tmp_path / "state", load_config(old), now=0)
    assert main(["reload", "-c", str(new)]) == 1
    assert f"the server runs {old}; a reload reads that file, not {new}" in capsys.readouterr().err


def test_reload_of_a_server_without_a_file_says_how_to_use_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _new = _pair(tmp_path)
    runstate.save_running(tmp_path / "state", default_config(), now=0)
    assert main(["reload", "-c", str(old)]) == 1
    assert f"reads no file; start it with -c {old}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        pytest.param([("127.0.0.1", 5353), ("::1", 5353)], "dig @127.0.0.1 -p 5353 example.com",
                     id="a-user-on-5353"),
        pytest.param([("0.0.0.0", 53), ("::", 53)], "dig @127.0.0.1 example.com",
                     id="root-on-53-everywhere"),
        pytest.param([("::", 53)], "dig @::1 example.com", id="ipv6-only"),
        pytest.param([("192.168.1.2", 5300)], "dig @192.168.1.2 -p 5300 example.com",
                     id="one-address"),
    ],
)  # fmt: skip
def test_the_start_up_hint_digs_the_port_really_bound(
    bound: list[tuple[str, int]], expected: str
) -> None:
    assert dig_hint([ListenAddress(host, port) for host, port in bound]) == expected


def test_check_warns_of_a_web_app_over_plain_http_beyond_this_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    for listen, tls, warned in (
        ("0.0.0.0:8080", "", True),
        ("127.0.0.1:8080", "", False),
        ("[::]:8443", "tls_cert: c.pem, tls_key: k.pem, ", False),
    ):
        path.write_text(
            f'profiles: {{minh: {{age_band: 9-12}}}}\nweb: {{{tls}listen: "{listen}"}}\n'
        )
        assert main(["check", "-c", str(path)]) == 0
        out = capsys.readouterr().out
        assert ("without tls_cert: passwords and sessions cross the network" in out) is warned
