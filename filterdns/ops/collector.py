"""The garbage collector while a process serves (the main process or a worker).

What start-up built (modules, configuration, lists) lives as long as the process: `gc.freeze`
keeps it out of the collector's full passes, which would otherwise rescan it while serving.
Each query allocates a few objects that die with it, and the cache and memos hold many that the
older generations' passes rescan: a young collection every 20,000 allocations rather than 700
costs 4-9 % less CPU per answer (blocked and mix workloads, bench/PROFILE.md).
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 100)


def serving() -> None:
    """Start-up is over: freeze what it built and collect at the serving thresholds."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
