"""`python -m filterdns.cli.worker`: one worker process, started by `filterdns serve` when
`server.workers` asks for more than one (app.workers); never run by hand."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

from filterdns.app.worker import serve


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed, as `filterdns serve` (cli.main, not imported here:
    its commands' modules would cost each worker some 5 MB)."""
    try:
        import uvloop  # noqa: PLC0415 - optional at run time
    except ImportError:  # pragma: no cover - a dependency on Linux; asyncio works too
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: list[str] | None = None) -> int:
    """Serve as worker `--number` on the inherited sockets until told to stop."""
    parser = argparse.ArgumentParser(prog="filterdns-worker")
    parser.add_argument("--number", type=int, required=True)
    parser.add_argument("--channel", type=int, required=True)
    parser.add_argument("--sockets", required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format=f"%(asctime)s %(levelname)s %(name)s[worker {args.number}]: %(message)s",
        stream=sys.stderr,
    )
    fds = [int(fd) for fd in args.sockets.split(",")]
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(args.channel, fds, args.number))
    return 0


if __name__ == "__main__":
    sys.exit(main())
