"""(written next)"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from filterdns.web.backend import Backend
from filterdns.web.keys import BACKEND


def application(backend: Backend, database: Path) -> web.Application:
    """The app of `web.block_page`: every path answers the block page."""
    app = web.Application()
    app[BACKEND] = backend
    return app
