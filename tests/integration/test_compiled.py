"""The compiled hot modules (`make compiled`) serve as the Python modules do.

The rest of the suite runs the Python modules (tests/conftest.py); these tests run a real
`filterdns serve` on the compiled ones, and the tests that cover the compiled modules most (the
wire format byte for byte, the links, the answer memo, the cache, the decisions, the listener
over IPv4 and IPv6, hostile packets, the upstream exchange and its sockets, the list index)
again in a child pytest on them. Without a build they skip;
with FILTERDNS_REQUIRE_COMPILED=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from filterdns import compiled
from tests.fakes.upstream import FakeUpstream
from tests.integration.processes import ROOT, start_serve, stop

# The tests run again on the compiled modules: those that reach them most (about a
# minute of child pytest in all), in four groups that separate workers of the suite can take.
AGAIN = {
    "wire": (
        "tests/unit/test_memo.py",  # the memos' own overrides (CostMemo.clear), but for SKIPPED
        "tests/unit/test_answer_bytes.py",
        "tests/unit/test_wire.py",
        "tests/unit/test_hostile_wire.py",
        "tests/unit/test_dnssec_wire.py",
        "tests/unit/test_model.py",
        "tests/unit/test_cache.py",
        "tests/unit/test_answermemo.py",
    ),
    "policy": (
        "tests/unit/test_access.py",
        "tests/unit/test_clients.py",
        "tests/unit/test_decision_memo.py",
        "tests/unit/test_policy.py",
        "tests/unit/test_links.py",
        "tests/unit/test_fold.py",
        "tests/unit/test_profile_schedules.py",
    ),
    "servers": (
        "tests/integration/test_proxy.py",
        "tests/integration/test_udp_batch.py",
        "tests/integration/test_hostile.py",
        "tests/integration/test_inspection.py",
        "tests/integration/test_answer_memo.py",
        "tests/integration/test_log_folding.py",
    ),
    "upstream": (
        "tests/unit/test_upstream.py",
        "tests/unit/test_wheel.py",
        "tests/unit/test_udp_ids.py",
        "tests/unit/test_index.py",
        "tests/unit/test_special.py",
        "tests/unit/test_protection.py",
        "tests/integration/test_transport.py",
        "tests/unit/test_ratelimit.py",
        "tests/unit/test_replies.py",
    ),
}


# Their entries subclass `memo.Linked` in Python, which a compiled class refuses (the cache's
# entries, compiled too, are tested through test_cache.py).
SKIPPED = (
    "tests/unit/test_memo.py::test_an_lru_keeps_its_entries_in_order_of_use",
    "tests/unit/test_memo.py::test_popping_an_empty_lru_says_so_and_clear_empties_it",
    "tests/unit/test_memo.py::test_an_entry_out_of_the_lru_is_freed_with_its_last_reference",
)


def on_compiled() -> dict[str, str]:
    """The environment of a process that runs the compiled modules; skip (or fail) without."""
    locations, why = compiled.check(compiled.build_dir())
    if locations is None:
        if os.environ.get("FILTERDNS_REQUIRE_COMPILED") == "1":
            pytest.fail(f"the compiled modules are required here: {why}")
        pytest.skip(why)
    return {**os.environ, compiled.ENV: "1"}


def test_every_test_file_run_again_exists() -> None:
    files = [f for group in AGAIN.values() for f in group]
    assert [f for f in files if not (ROOT / f).is_file()] == []
    source = (ROOT / "tests/unit/test_memo.py").read_text()
    assert [t for t in SKIPPED if f"def {t.split('::')[1]}(" not in source] == []


async def test_filterdns_serve_runs_the_compiled_modules(tmp_path: Path) -> None:
    env = on_compiled()
    (tmp_path / "gambling.txt").write_text("casino.example\n")
    async with FakeUpstream({("school.example", "A"): ["192.0.2.7"]}) as upstream:
        config = tmp_path / "config.yaml"
        config.write_text(
            'server:\n  listen: ["127.0.0.1:0", "[::1]:0"]\n'
            f'upstreams:\n  servers: ["{upstream.address}"]\n'
            f"lists:\n  download_defaults: false\n  cache_dir: {tmp_path / 'lists'}\n"
            f"log:\n  database: {tmp_path / 'filterdns.db'}\n"
            f"categories: {{gambling: [{tmp_path / 'gambling.txt'}]}}\n"
            # No bedtime: the allowed name must be allowed whatever the hour the suite runs at
            "profiles: {kid: {age_band: 9-12, band_schedules: false}}\ndefault_profile: kid\n"
        )
        process, port, seen = await start_serve(config, env=env)
        try:
            assert f"compiled modules ({len(compiled.HOT)}, {compiled.tag()})" in seen[-1]
            for ask in (dns.asyncquery.udp, dns.asyncquery.tcp):
                blocked = await ask(dns.message.make_query("casino.example", "A"), "127.0.0.1",
                                    port=port, timeout=5)  # fmt: skip
                allowed = await ask(dns.message.make_query("school.example", "A"), "127.0.0.1",
                                    port=port, timeout=5)  # fmt: skip
                assert blocked.rcode() == dns.rcode.NXDOMAIN
                assert allowed.rcode() == dns.rcode.NOERROR
                assert allowed.answer[0][0].address == "192.0.2.7"
        finally:
            await stop(process)


# Dataclasses of the hot modules built at start-up, on a reload or once per client, device or
# alert window: the __init__ `dataclasses` generates (interpreted even in a compiled module) is
# fine there. Every other one is built per query and must write its own (docs/architecture.md).
NOT_PER_QUERY = {
    "filterdns.resolvers.answermemo.MemoHooks",
    "filterdns.resolvers.cache.CacheStats",
    "filterdns.policy.clients.ClientMatch",
    "filterdns.policy.clients._Prefix",
    "filterdns.policy.state.State",
    "filterdns.policy.state.Profile",
    "filterdns.policy.values.Grant",
    "filterdns.querylog.alerts._Window",
    "filterdns.querylog.rows.LogStats",
    "filterdns.resolvers.upstream.Health",
}

INTERPRETED_INITS = """
import dataclasses, importlib, types
from filterdns import compiled
for name in compiled.HOT:
    module = importlib.import_module(name)
    for value in vars(module).values():
        if (isinstance(value, type) and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
                and isinstance(value.__init__, types.FunctionType)):
            print(f"{module.__name__}.{value.__qualname__}")
"""


def test_the_values_built_per_query_are_built_by_compiled_code() -> None:
    env = on_compiled()
    done = subprocess.run([sys.executable, "-c", INTERPRETED_INITS], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    interpreted = set(done.stdout.split())
    assert interpreted - NOT_PER_QUERY == set()
    # The same probe on the Python modules finds the per-query ones too: it can fail.
    plain = {**env, compiled.ENV: "0"}
    python = subprocess.run([sys.executable, "-c", INTERPRETED_INITS], env=plain, cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "filterdns.dns.wire.Query" in python.stdout.split()


# What still runs as Python while the compiled proxy answers, and why; anything else a query
# runs belongs in compiled.HOT.
STILL_PYTHON = {
    "dns/mmsg.py",  # recvmmsg/sendmmsg through ctypes: mypyc's C for it does not build
    "lists/namemodel.py",  # a site no list decides, scored once (tests subclass NameModel)
    "lists/nametable.py",  # ... and its weights
    "dns/tcpslots.py",  # once per TCP connection, not per query
    "querylog/store.py",  # a blocked lookup's row handed to the log's queue
    "policy/grants.py",  # `current`: a getter the policy is given
    "app/lifecycle.py",  # the index getter the policy is given
}


def test_a_query_runs_no_python_function_but_those_named() -> None:
    env = on_compiled()
    probe = [sys.executable, "-m", "tests.integration.hotpath_probe"]
    done = subprocess.run(probe, env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    modules = {line.split(":")[0] for line in done.stdout.split()}
    assert modules - STILL_PYTHON == set(), done.stdout
    # The same probe on the Python modules sees the exchange's functions: it can fail.
    plain = {**env, compiled.ENV: "0"}
    python = subprocess.run(probe, env=plain, cwd=ROOT, capture_output=True, text=True,
                            check=True, timeout=120)  # fmt: skip
    assert "resolvers/upstream.py:resolve" in python.stdout.split()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("group", AGAIN)
def test_the_tests_of_the_hot_path_pass_on_the_compiled_modules(group: str) -> None:
    env = on_compiled()
    probe = "import filterdns.dns.wire as w, filterdns.compiled as c; print(w.__file__, c.state())"
    where = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert where.split()[0].endswith(".so")
    assert "compiled modules" in where
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *AGAIN[group]]
    argv += [f"--deselect={test}" for test in SKIPPED if test.split("::")[0] in AGAIN[group]]
    done = subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=580, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
