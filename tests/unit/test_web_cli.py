"""`filterdns web ...` as a parent or a school's admin types it: accounts made from a password
on standard input, listed, tokens shown once and listed without their values, clear errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from filterdns.cli.main import main
from filterdns.web.accounts import AccountStore

PASSWORD = "correct horse battery"


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"log: {{database: {tmp_path / 'state' / 'filterdns.db'}}}\n"
        "profiles: {minh: {age_band: 9-12}, 7a: {age_band: 9-12}, 7b: {age_band: 9-12}}\n"
    )
    return str(path)


def web(config: str, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["-c", config, "web", *args])


def test_accounts_made_from_standard_input_and_listed(
    config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = web(config, monkeypatch, "passwd", "anna", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0
    assert capsys.readouterr().out.strip() == "made parent account anna"
    args = ("passwd", "mr-hai", "--role", "teacher", "--profiles", "7a, 7b", "--password-stdin")
    assert web(config, monkeypatch, *args, stdin=PASSWORD) == 0
    assert capsys.readouterr().out.strip() == "made teacher account mr-hai (sees 7a, 7b)"
    assert web(config, monkeypatch, "users", "--json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "anna", "role": "parent", "profiles": []},
        {"name": "mr-hai", "role": "teacher", "profiles": ["7a", "7b"]},
    ]
    store = AccountStore(Path(config).parent / "state" / "filterdns.db")
    assert store.check_password("mr-hai", PASSWORD) is not None  # the line ending is no part of it


def test_a_new_password_ends_the_sessions(
    config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    web(config, monkeypatch, "passwd", "anna", "--password-stdin", stdin=PASSWORD)
    store = AccountStore(Path(config).parent / "state" / "filterdns.db")
    session_id, _ = store.new_session("anna", lifetime=3600)
    assert web(config, monkeypatch, "passwd", "anna", "--password-stdin", stdin="new one!") == 0
    assert "changed the password of parent account anna; its sessions ended" in (
        capsys.readouterr().out
    )
    assert store.session(session_id) is None
    assert store.check_password("anna", "new one!") is not None


def test_a_token_is_printed_once_and_listed_without_its_value(
    config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    web(config, monkeypatch, "passwd", "anna", "--password-stdin", stdin=PASSWORD)
    capsys.readouterr()
    assert web(config, monkeypatch, "token", "anna", "--label", "home assistant") == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("fdns_") and "\n" not in token
    assert "shown only now" in err
    store = AccountStore(Path(config).parent / "state" / "filterdns.db")
    assert store.check_token(token) == store.get("anna")
    assert web(config, monkeypatch, "tokens", "--json") == 0
    out = capsys.readouterr().out
    (listed,) = json.loads(out)
    assert (listed["id"], listed["account"], listed["label"]) == (1, "anna", "home assistant")
    assert listed["last_used"] is not None and token not in out
    assert web(config, monkeypatch, "tokens") == 0
    out = capsys.readouterr().out
    assert "home assistant" in out and token not in out
    assert web(config, monkeypatch, "revoke-token", "1") == 0
    assert store.check_token(token) is None
    assert web(config, monkeypatch, "revoke-token", "1") == 1
    assert "no API token #1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("passwd", "mr-hai", "--role", "teacher", "--password-stdin"), PASSWORD,
         "a teacher needs --profiles (one or more of: minh, 7a, 7b, household)"),
        (("passwd", "mr-hai", "--role", "teacher", "--profiles", "7a,8c", "--password-stdin"),
         PASSWORD, "no profile '8c'; profiles: minh, 7a, 7b, household"),
        (("passwd", "anna", "--profiles", "7a", "--password-stdin"), PASSWORD,
         "a parent sees every profile: add --role teacher to limit anna"),
        (("passwd", "anna", "--password-stdin"), "short\n", "a password has 8 to 1024 characters"),
        (("passwd", "anna smith", "--password-stdin"), PASSWORD, "' ' is not allowed"),
        (("passwd", "anna"), PASSWORD, "no terminal to ask the password on"),
        (("token", "ghost"), "", "no web account 'ghost'"),
        (("remove", "ghost"), "", "no web account 'ghost'"),
    ],
)  # fmt: skip
def test_what_cannot_be_done_says_why_in_one_line(
    config: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    stdin: str,
    message: str,
) -> None:
    assert web(config, monkeypatch, *args, stdin=stdin) == 1
    out, err = capsys.readouterr()
    assert message in err and err.count("\n") == 1 and out == ""
    assert PASSWORD not in err


def test_removing_an_account(
    config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    web(config, monkeypatch, "passwd", "anna", "--password-stdin", stdin=PASSWORD)
    web(config, monkeypatch, "token", "anna")
    assert web(config, monkeypatch, "remove", "anna") == 0
    assert "removed web account anna" in capsys.readouterr().out
    assert web(config, monkeypatch, "users") == 0
    assert "no web accounts yet" in capsys.readouterr().out


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("typed", "code"), [((PASSWORD, PASSWORD), 0), ((PASSWORD, "typo"), 1)])
def test_on_a_terminal_the_password_is_asked_twice(
    config: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    typed: tuple[str, str],
    code: int,
) -> None:
    answers = iter(typed)
    prompts: list[str] = []
    monkeypatch.setattr("sys.stdin", Terminal())

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", ask)
    assert main(["-c", config, "web", "passwd", "anna"]) == code
    assert prompts == ["new password for anna: ", "the same again: "]
    store = AccountStore(Path(config).parent / "state" / "filterdns.db")
    assert (store.get("anna") is not None) == (code == 0)
    if code:
        assert "the two passwords differ; nothing was changed" in capsys.readouterr().err
