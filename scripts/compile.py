"""Compile filterdns's hot modules (filterdns.compiled.HOT) to C extension modules with mypyc.

    .venv/bin/python scripts/compile.py [--force] [--required]

Writes filterdns/_compiled/<python>-<platform>/: one extension module per hot module, the
shared library they run in, and manifest.json with the SHA-256 of each module's source, which
`filterdns.compiled.use()` checks at every start: a source edited since is never shadowed by
an older build (the Python modules run until the next `make compiled`). Nothing is done when the
build there already matches the sources. Without a C compiler, Python's headers or mypyc, it
says what is missing and exits 0 (filterdns runs its Python modules), or 1 with --required.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # this checkout: its pyproject.toml's mypy settings
os.environ["FILTERDNS_COMPILED"] = "0"  # this process imports the sources, not a build
# The filterdns this Python runs: the checkout in its virtualenv (`pip install -e`), or the
# copy a plain `pip install` put in site-packages (docs/install.md); the build goes beside it.
from filterdns import compiled  # noqa: E402 - after the switch above

GROUP = "filterdns_hot"  # the shared library: filterdns_hot__mypyc.<suffix>


def missing() -> str | None:
    """What the build needs and this machine lacks, in words; None when all is there."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return "no C compiler (Debian: apt-get install gcc)"
    if not Path(sysconfig.get_paths()["include"], "Python.h").is_file():
        return "no Python headers (Debian: apt-get install python3-dev)"
    try:
        import mypyc.build  # noqa: F401, PLC0415 - the check is the import
    except ImportError:
        return "no mypyc (pip install mypy)"
    return None


def build(out: Path) -> None:
    """mypyc's C for the hot modules, compiled into `out` with the manifest written last."""
    from mypyc.build import mypycify  # noqa: PLC0415
    from setuptools import setup  # noqa: PLC0415

    sources = [str(compiled.source(name)) for name in compiled.HOT]
    with tempfile.TemporaryDirectory(prefix="filterdns-compile-") as tmp:
        here = Path.cwd()
        os.chdir(tmp)  # setuptools reads the project files of the working directory: none here
        try:
            modules = mypycify(
                # `make typecheck` checks the types; an ignore this build sees as unused is no
                # reason to stop it.
                [
                    "--config-file",
                    str(ROOT / "pyproject.toml"),
                    "--no-warn-unused-ignores",
                    *sources,
                ],
                opt_level="3",
                multi_file=True,
                group_name=GROUP,
                target_dir=str(Path(tmp, "c")),
            )
            setup(
                name="filterdns-compiled",
                ext_modules=modules,
                script_args=["--quiet", "build_ext", "--build-lib", str(out),
                             "--build-temp", str(Path(tmp, "o")), "--parallel",
                             str(os.cpu_count() or 1)],
            )  # fmt: skip
        finally:
            os.chdir(here)
    suffix = importlib_suffix()
    entries = {}
    for name in compiled.HOT:
        file = Path(*name.split(".")).with_suffix(suffix)
        entries[name] = {"file": str(file), "sha256": compiled.digest(compiled.source(name))}
    library = {"name": f"{GROUP}__mypyc", "file": f"{GROUP}__mypyc{suffix}"}
    manifest = {"tag": compiled.tag(), "modules": entries, "library": library}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def importlib_suffix() -> str:
    """This interpreter's suffix of extension modules (.cpython-311-x86_64-linux-gnu.so)."""
    return str(sysconfig.get_config_var("EXT_SUFFIX"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--force", action="store_true", help="build even when the build matches")
    ap.add_argument("--required", action="store_true", help="fail when it cannot be built")
    args = ap.parse_args()
    out = compiled.build_dir()
    locations, why = compiled.check(out)
    if locations is not None and not args.force:
        print(f"filterdns: {why}: up to date")
        return 0
    lack = missing()
    if lack is not None:
        print(f"filterdns: not compiled, {lack}; the Python modules run", file=sys.stderr)
        return 1 if args.required else 0
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"filterdns: compiling {len(compiled.HOT)} modules into {out} (about a minute)")
    try:
        build(out)
    except (Exception, SystemExit) as exc:  # a compiler error: say it, keep the Python modules
        shutil.rmtree(out, ignore_errors=True)
        print(f"filterdns: compiling failed ({exc}); the Python modules run", file=sys.stderr)
        return 1 if args.required else 0
    print(f"filterdns: {compiled.check(out)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
