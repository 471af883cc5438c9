"""The running proxy: lifecycle (`App`: start, serve, stop), reloads and the file watch.

`lifecycle` holds `App`; `reload` what a reload decides before it swaps anything in; `watch`
the watch of the configuration file. The chain itself is assembled by `resolvers.chain`.
"""

from __future__ import annotations

from filterdns.app.lifecycle import App

__all__ = ["App"]
