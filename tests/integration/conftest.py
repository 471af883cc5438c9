"""Fixtures of the PostgreSQL tests: one throw-away cluster for the whole run (started the first
time a test asks for it), and a fresh database per test. A module with a `server` of its own
(the list servers of test_lists and test_remote) keeps it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.postgres import PgServer, cluster


@pytest.fixture(scope="session")
def server() -> Iterator[PgServer]:
    """The running test cluster (tests that stop it start it again)."""
    with cluster() as running:
        yield running


@pytest.fixture
def url(server: PgServer) -> str:
    """A fresh database on the test cluster, for one test."""
    return server.new_database()
