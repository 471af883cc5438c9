"""Building the index in a child process, so that parsing a big list never slows answering.

Parsing and hashing millions of names is pure Python: in a thread of the serving process it holds
the GIL, and every answer waits its turn. Measured on this 2-core machine while a 179 MB list
(5M names) was built beside a proxy answering 1,000 queries a second (`bench/build_latency.py`):
p90 / p99 round trip 0.11 / 0.15 ms idle, 5.29 / 10.70 ms with the build in a thread, 0.09 /
0.15 ms with it in a child process at nice 10. So for anything but small list sets the server starts
`python -m filterdns.lists.builder`, hands it the lists configuration on stdin (pickled: parent
and child are the same program), and reads JSON lines back: the child's log records as they
happen, re-emitted through the server's own loggers so they keep its format, then the result
(index fingerprint and every source's status). The child writes `index.bin` as any build does;
the server maps it. A child that is no longer wanted (the configuration changed, the server
stops) gets SIGTERM and removes its temporary files on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filterdns.config import ListsConfig

log = logging.getLogger(__name__)

NICE = 10  # the child yields the CPU to the server whenever the two compete
TERM_GRACE = 5.0  # seconds a stopped child has to remove its temporary files
_LINE_LIMIT = 1 << 26  # the result line holds every source's report
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def identity_for(cache_dir: Path) -> tuple[int, int] | None:
    """(uid, gid) the child runs as when root starts it: the owner of the list cache, so that
    what it writes there (the index, copies, downloads) stays readable by the server that runs
    as that user after giving root up (server.user). None: nothing to change."""
    if os.geteuid() != 0:
        return None
    try:
        st = cache_dir.stat()
    except OSError:
        return None
    if st.st_uid == 0:
        return None
    return st.st_uid, st.st_gid


def give_back(cache_dir: Path) -> None:
    """Hand what root wrote in the list cache back to the cache's owner (best effort): a build
    that had to run in the server while it was still root."""
    identity = identity_for(cache_dir)
    if identity is None:
        return
    for folder, dirs, files in os.walk(cache_dir):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to change
                os.lchown(os.path.join(folder, name), *identity)


def _become(identity: tuple[int, int] | None) -> None:
    """In the child, first thing: give root up for the cache owner's uid and gid. The child
    does it itself rather than through the spawn call, which uvloop's subprocess API lacks."""
    if identity is None:
        return
    uid, gid = identity
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


class BuilderFailed(Exception):
    """The child process could not be started or did not deliver an index."""


@dataclass(frozen=True, slots=True)
class ChildResult:
    """What the child built: the fingerprint `index.bin` carries and each source's status."""

    fingerprint: str
    reused: bool
    seconds: float
    changed: list[str]
    sources: list[dict[str, object]]


class ChildBuilder:
    """Runs one build at a time in a child process; `terminate` stops it."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.started = asyncio.Event()  # a child was started (and may still be running)

    async def build(
        self,
        config: ListsConfig,
        categories: Sequence[tuple[str, Sequence[str]]],
        *,
        download: bool,
    ) -> ChildResult:
        """Build in a child; raises BuilderFailed (never leaves the child running)."""
        level = logging.getLogger("filterdns").getEffectiveLevel()
        identity = identity_for(Path(config.cache_dir))
        request = pickle.dumps((config, tuple(categories), download, level, identity))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "filterdns.lists.builder",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, limit=_LINE_LIMIT,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise BuilderFailed(f"cannot start {sys.executable}: {reason}") from None
        self.process = process
        self.started.set()
        try:
            return await self._talk(process, request)
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), TERM_GRACE)
                except TimeoutError:  # stuck in a long C call: no more waiting
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            self.process = None

    async def _talk(self, process: asyncio.subprocess.Process, request: bytes) -> ChildResult:
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        errors = asyncio.ensure_future(process.stderr.read())
        try:
            process.stdin.write(request)
            await process.stdin.drain()
            process.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died at once: its stderr says why
        result: ChildResult | None = None
        while line := await process.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "log" in message:
                level, name, text = message["log"]
                logging.getLogger(name).log(level, "%s", text)
            elif "result" in message:
                result = ChildResult(**message["result"])
        code = await process.wait()
        stderr = (await errors).decode("utf-8", "replace").strip()
        if result is None or code != 0:
            tail = stderr.splitlines()[-1] if stderr else "no output"
            raise BuilderFailed(f"the list builder exited with status {code}: {tail}")
        return result

    def terminate(self) -> None:
        """Stop the running child, if any (it removes its temporary files as it goes)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()


class _Forward(logging.Handler):
    """Each log record of the child as one JSON line on stdout, for the server to re-emit."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        _send({"log": [record.levelno, record.name, text]})


def _send(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message, default=str) + "\n")
    sys.stdout.flush()


def _stop(_signum: int, _frame: object) -> None:
    sys.exit(128 + signal.SIGTERM)  # unwinds, so temporary files are removed


def main() -> int:
    """The child: read the request on stdin, build, write JSON lines on stdout."""
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(OSError):  # a sandbox may forbid it (systemd's ~@resources)
        os.nice(NICE)
    config, categories, download, level, identity = pickle.load(sys.stdin.buffer)
    _become(identity)
    root = logging.getLogger("filterdns")
    root.addHandler(_Forward())
    root.setLevel(level)
    root.propagate = False
    from filterdns.lists.catalog import ListSet  # noqa: PLC0415 (the catalog imports this module)

    listset = ListSet(config, categories)
    result = listset.build(download=download)
    try:
        if not result.written:
            raise BuilderFailed(f"{listset.cache_dir} is not writable")
        _send({
            "result": {
                "fingerprint": result.index.fingerprint,
                "reused": result.reused,
                "seconds": result.seconds,
                "changed": result.changed,
                "sources": [status.to_json() for status in result.sources],
            }
        })  # fmt: skip
    finally:
        result.index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
