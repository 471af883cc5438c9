"""Shared test setup: the Python modules unless asked otherwise, a private state directory."""

from __future__ import annotations

import os
from collections.abc import Iterator

# The suite runs the Python modules, whatever `make compiled` built (a test may patch them);
# tests/integration/test_compiled.py runs chosen tests again on the compiled ones.
# FILTERDNS_COMPILED=1 runs the suite on them. Set before filterdns is first imported.
os.environ.setdefault("FILTERDNS_COMPILED", "0")

import pytest

from filterdns.config import STATE_DIR_ENV


@pytest.fixture(autouse=True, scope="session")
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every default state path (database, list cache, index) out of the system and repo.

    One directory for the session, so the list index built by the first proxy is reused by the
    next ones, as it is across restarts of a real installation.
    """
    previous = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        del os.environ[STATE_DIR_ENV]
    else:
        os.environ[STATE_DIR_ENV] = previous
