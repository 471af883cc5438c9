"""filterdns: a DNS-level parental filtering proxy."""

from __future__ import annotations

from filterdns import compiled

__version__ = "0.1.0"

compiled.use()  # the hot modules compiled to C when built from these sources (compiled.py)
