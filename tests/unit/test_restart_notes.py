"""What a reload cannot apply to a running server is said, in words an admin can act on."""

from __future__ import annotations

import pytest

from filterdns.app.reload import restart_notes
from filterdns.config import load_config_text

BASE = "server: {listen: ['127.0.0.1:5353']}\n"


@pytest.mark.parametrize(
    ("after", "notes"),
    [
        pytest.param(BASE, [], id="nothing-changed"),
        pytest.param(
            "server: {listen: ['127.0.0.1:5353'], workers: 2}\n",
            ["server.workers changed; it applies after a restart"],
            id="workers",
        ),
        pytest.param(
            "server: {listen: ['127.0.0.1:5353'], shutdown_grace: 1s}\n",
            ["server.shutdown_grace changed; it applies after a restart"],
            id="shutdown-grace",
        ),
    ],
)
def test_restart_notes(after: str, notes: list[str]) -> None:
    assert restart_notes(load_config_text(BASE), load_config_text(after)) == notes
