"""What a wheel holds: every data file the package reads is listed as package data."""

from __future__ import annotations

import fnmatch
import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "filterdns"


def test_every_data_file_of_the_package_is_package_data() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = settings["tool"]["setuptools"]["package-data"]["filterdns"]
    data = [  # through the blocklists/ link, as a wheel build goes
        (Path(folder) / name).relative_to(PACKAGE).as_posix()
        for folder, _dirs, files in os.walk(PACKAGE, followlinks=True)
        for name in files
        if not name.endswith((".py", ".pyc"))
        and "__pycache__" not in folder
        # what `make compiled` builds for this machine is no part of a wheel
        and "_compiled" not in Path(folder).relative_to(PACKAGE).parts
    ]
    shipped = {
        "config/default.yaml", "blocklists/adult.txt.gz", "blocklists/SOURCES.md",
        "blocklists/name-model.bin",
    }  # fmt: skip
    assert shipped <= set(data)
    assert [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


def test_the_shipped_lists_live_at_the_top_of_the_repository() -> None:
    assert (PACKAGE / "blocklists").is_symlink()
    assert (PACKAGE / "blocklists").resolve() == ROOT / "blocklists"
    assert (ROOT / "blocklists" / "SOURCES.md").is_file()
