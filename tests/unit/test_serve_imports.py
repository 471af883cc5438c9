"""`filterdns serve` loads only what serving needs: the other commands' modules, rich and the
HTTP client stay out of the server's memory (about 7 MB of it), as do zipfile (through
importlib.resources) and difflib (the "did you mean" hints), and every command still works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from filterdns.cli.main import main

# Run in a fresh interpreter: the command line with the App replaced by one that prints, when
# the server would start, which of the modules serving does not need are loaded.
PROBE = """
import sys
from filterdns.cli import main as cli

NOT_NEEDED = ("rich", "httpx", "email", "importlib.metadata", "filterdns.cli.admin",
              "filterdns.cli.report", "filterdns.cli.web", "filterdns.querylog.report",
              "zipfile", "difflib")

class App:
    def __init__(self, config):
        pass

    async def run(self, ready):
        loaded = [m for m in sys.modules if m.startswith(NOT_NEEDED)]
        print("loaded:", ",".join(sorted(loaded)))

cli.App = App
sys.exit(cli.main(sys.argv[1:]))
"""

CONFIG = """\
server:
  listen: ["127.0.0.1:5353"]
upstreams:
  servers: ["9.9.9.9"]
"""


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["serve", "-c", "{cfg}"], id="serve -c"),
        pytest.param(["-c", "{cfg}", "serve"], id="-c before serve"),
        pytest.param(["--config", "{cfg}", "serve", "--log-level", "warning"], id="options"),
    ],
)
def test_serve_leaves_out_what_it_does_not_use(tmp_path: Path, argv: list[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIG)
    words = [w.replace("{cfg}", str(cfg)) for w in argv]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *words], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded:"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["--help"], ["serve", "grant", "report", "web"], id="help-lists-all"),
        pytest.param(["serve", "--help"], ["--log-format"], id="serve-help"),
    ],
)
def test_help_still_names_every_command(
    argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(word in out for word in expected), out
