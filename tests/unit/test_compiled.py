"""When the compiled hot modules are used: only a build of these very sources, for this Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from filterdns import compiled

LIB = "filterdns_hot__mypyc"


def fake_build(directory: Path, *, tag: str | None = None, modules: tuple[str, ...] = compiled.HOT,
               digests: dict[str, str] | None = None) -> Path:  # fmt: skip
    """A build's manifest and (empty) files: what check() reads, without a compiler."""
    entries = {}
    for name in modules:
        file = Path(*name.split(".")).with_suffix(".so")
        (directory / file).parent.mkdir(parents=True, exist_ok=True)
        (directory / file).write_bytes(b"")
        digest = (digests or {}).get(name) or compiled.digest(compiled.source(name))
        entries[name] = {"file": str(file), "sha256": digest}
    (directory / f"{LIB}.so").write_bytes(b"")
    manifest = {"tag": tag or compiled.tag(), "modules": entries,
                "library": {"name": LIB, "file": f"{LIB}.so"}}  # fmt: skip
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_a_build_of_these_sources_is_used_module_by_module(tmp_path: Path) -> None:
    locations, why = compiled.check(fake_build(tmp_path))
    assert locations is not None
    assert set(locations) == {*compiled.HOT, LIB}
    assert locations["filterdns.dns.wire"] == tmp_path / "filterdns" / "dns" / "wire.so"
    assert why.startswith(f"compiled modules ({len(compiled.HOT)}")


def test_one_source_edited_since_the_build_turns_every_compiled_module_off(
    tmp_path: Path,
) -> None:
    locations, why = compiled.check(fake_build(tmp_path, digests={"filterdns.dns.wire": "0" * 64}))
    assert locations is None
    assert why == "Python modules (wire.py changed since it was compiled)"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("nothing built", "nothing compiled"),
        ("another python", "compiled for cpython-39-other, not"),
        ("other modules", "holds other modules"),
        ("a file missing", "a compiled file is missing"),
        ("a broken manifest", "manifest is unreadable"),
        ("a manifest without its digests", "manifest is unreadable"),
    ],
)
def test_a_build_that_does_not_fit_leaves_the_python_modules(
    tmp_path: Path, change: str, expected: str
) -> None:
    if change == "another python":
        fake_build(tmp_path, tag="cpython-39-other")
    elif change == "other modules":
        fake_build(tmp_path, modules=compiled.HOT[:-1])
    elif change == "a file missing":
        fake_build(tmp_path)
        (tmp_path / f"{LIB}.so").unlink()
    elif change == "a broken manifest":
        fake_build(tmp_path)
        (tmp_path / "manifest.json").write_text("{ not json")
    elif change == "a manifest without its digests":
        fake_build(tmp_path)
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        del manifest["modules"]["filterdns.dns.wire"]["sha256"]
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    locations, why = compiled.check(tmp_path)
    assert locations is None
    assert why.startswith("Python modules (")
    assert expected in why


def test_every_hot_module_has_its_source() -> None:
    assert len(set(compiled.HOT)) == len(compiled.HOT)
    assert all(compiled.source(name).is_file() for name in compiled.HOT)


def test_the_switch_off_keeps_the_python_modules_whatever_is_built() -> None:
    env = dict(os.environ, FILTERDNS_COMPILED="0")
    code = "import filterdns.dns.wire as w, filterdns.compiled as c; print(w.__file__, c.state())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    file, state = done.stdout.strip().split(" ", 1)
    assert file.endswith("wire.py")
    assert state == "Python modules (FILTERDNS_COMPILED=0)"


def test_a_library_that_does_not_load_leaves_the_python_modules(tmp_path: Path) -> None:
    library = tmp_path / "filterdns_damaged__mypyc.so"
    library.write_bytes(b"not an ELF file")
    before = list(sys.meta_path)
    why = compiled.install({"filterdns_damaged__mypyc": library}, "filterdns_damaged__mypyc")
    assert why is not None
    assert why.startswith("Python modules (the compiled build does not load: ")
    assert sys.meta_path == before
    assert "filterdns_damaged__mypyc" not in sys.modules
