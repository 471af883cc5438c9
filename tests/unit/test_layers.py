"""The import layers of ARCHITECTURE.md: a module imports only from its own row or rows above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "filterdns"

LAYERS = {
    "errors": 0, "model": 0, "names": 0, "wire": 0, "addresses": 0, "records": 0, "replies": 0,
    "schedule": 1, "duration": 1, "timezones": 1,
    "config": 2, "configschema": 2, "schemagen": 2,
    "lists": 3, "clients": 3, "neighbors": 3, "policy": 3, "answers": 3,
    "effective": 3, "protection": 3,
    "transport": 4, "store": 4, "ratelimit": 4, "tcpslots": 4, "alerts": 4, "sdnotify": 4,
    "privileges": 4, "runstate": 4, "fdlimit": 4, "dbfile": 4, "grants": 4,
    "resolvers": 5,
    "server": 6, "metrics": 6,
    "app": 7, "report": 7,
    "cli": 8, "admin": 8, "control": 8, "__main__": 8,
}  # fmt: skip

# Each third-party library lives in one place.
THIRD_PARTY = {
    "dnslib": {"model"},
    "yaml": {"config", "configschema"},
    "aiosqlite": {"store"},
    "rich": {"report", "cli", "admin", "control"},
    "uvloop": {"cli"},
    "httpx": {"transport"},
}


def _modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE
    )


def _top(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "filterdns":
                names.update(f"filterdns.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_from_its_layer_or_above(path: Path) -> None:
    me = _top(path)
    assert me in LAYERS, f"{me} has no layer in ARCHITECTURE.md; add it to the table"
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "filterdns" and len(parts) > 1 and parts[1] in LAYERS:
            assert LAYERS[parts[1]] <= LAYERS[me], f"{me} (layer {LAYERS[me]}) imports {name}"
        if parts[0] in THIRD_PARTY:
            assert me in THIRD_PARTY[parts[0]], (
                f"{parts[0]} may be imported only in {THIRD_PARTY[parts[0]]}"
            )
