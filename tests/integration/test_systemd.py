"""The systemd unit: the directives it must have, and `systemd-analyze security` rates it OK."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from filterdns.config import default_config, load_config
from filterdns.ops.fdlimit import files_needed

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "filterdns.service"
SYSUSERS = ROOT / "systemd" / "filterdns.sysusers"
MAX_EXPOSURE = 2.5  # "OK" or better in systemd-analyze's scale of 0 (safe) to 10 (exposed)


def _directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value assigned (a unit may repeat a key), comments skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return _directives(UNIT)["Service"]


def _one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values, f"{key}= is missing from {UNIT.name}"
    assert len(values) == 1, f"{key}= is set {len(values)} times"
    return values[0]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("ExecStart", "/opt/filterdns/bin/filterdns serve -c /etc/filterdns/config.yaml"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
        ("StateDirectory", "filterdns"),
        ("ConfigurationDirectory", "filterdns"),
        ("Environment", "FILTERDNS_STATE_DIR=%S/filterdns"),
        ("User", "filterdns"),
    ],
)
def test_the_unit_has_the_directive(service: dict[str, list[str]], key: str, value: str) -> None:
    assert _one(service, key) == value


def test_the_open_file_limit_fits_the_caps(service: dict[str, list[str]]) -> None:
    # A soft limit of 1,024 was reached by six local addresses querying a silent upstream.
    limit = int(_one(service, "LimitNOFILE"))
    assert limit >= 4 * files_needed(default_config(is_root=True))
    assert limit >= files_needed(load_config(ROOT / "config.example.yaml"))


def test_network_is_limited_to_the_families_the_proxy_uses(service: dict[str, list[str]]) -> None:
    # AF_NETLINK: `ip neigh` for the IPv6 neighbour table (clients named by MAC address).
    families = set(_one(service, "RestrictAddressFamilies").split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


def test_system_calls_are_filtered(service: dict[str, list[str]]) -> None:
    filters = service["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert all(f.startswith("~") for f in filters[1:]), "later filters may only deny more"


def test_the_service_user_is_the_one_sysusers_creates(service: dict[str, list[str]]) -> None:
    entries = [
        line.split()
        for line in SYSUSERS.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert [(e[0], e[1]) for e in entries] == [("u", _one(service, "User"))]
    assert _one(service, "Group") == _one(service, "User")


def test_the_unit_is_enabled_for_multi_user() -> None:
    assert _directives(UNIT)["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_analyze_security_rates_the_unit_ok() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd to run this check)")
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)", output)
    if match is None:
        if "--offline" in output or "unrecognized option" in output:
            pytest.skip("this systemd-analyze has no --offline (systemd 250 or later needed)")
        pytest.fail(f"no exposure figure in systemd-analyze's output:\n{output}")
    exposure, rating = float(match.group(1)), match.group(2)
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} ({rating}):\n{output}"
    assert rating in ("OK", "SAFE"), output


def test_the_state_directory_is_the_services_alone(service: dict[str, list[str]]) -> None:
    # Children's browsing history: the directory 0700, and whatever the service creates 0600.
    assert _one(service, "StateDirectoryMode") == "0700"
    assert _one(service, "UMask") == "0077"
