"""The open files the configured caps need, and the process's limit raised to fit them.

Every upstream exchange over UDP holds a socket until its answer or deadline, and every TCP
client connection holds one: `upstreams.max_outstanding` and `server.max_tcp_connections` bound
them. Past the process's limit on open files (often 1,024) a new socket fails, and with it the
queries that needed one. At start and at each reload the soft limit is raised to what the caps
need when the hard limit allows (systemd's unit sets `LimitNOFILE=` instead: its system call
filter denies the raise); when it cannot be, a warning says which setting to change.
"""

from __future__ import annotations

import logging
import resource

from filterdns.config import Config

log = logging.getLogger(__name__)

# Standard streams, the event loop and its signal pipe, the log database (file, -wal and -shm),
# the list index and a list build's pipes, the metrics endpoint, neighbour lookups, and a margin.
BASE_FILES = 64
# Per upstream: its pooled TCP or TLS connection (and one closing) and up to 8 HTTPS ones.
FILES_PER_UPSTREAM = 10


def files_needed(config: Config) -> int:
    """Open files the proxy may hold at once with `config`'s caps, listeners and upstreams."""
    up = config.upstreams
    servers = set(up.servers).union(*(group for _suffix, group in up.conditional))
    return (
        up.max_outstanding
        + config.server.max_tcp_connections
        + 2 * len(config.server.listen)  # UDP and TCP on each address
        + FILES_PER_UPSTREAM * len(servers)
        + BASE_FILES
    )


def fit_open_files(config: Config) -> int:
    """Raise the soft limit on open files to what `config` needs when it is lower and the hard
    limit allows; warn when it stays lower. Returns the soft limit in force."""
    needed = files_needed(config)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:  # a system call filter, a container's policy
            log.debug("cannot raise the limit on open files: %s", exc)
        else:
            log.info("raised the limit on open files from %d to %d for the caps", soft, target)
            soft = target
    if soft < needed:
        log.warning(
            "open files are limited to %d, but upstreams.max_outstanding (%d) and"
            " server.max_tcp_connections (%d) with the listeners and upstreams need about %d:"
            " raise the limit (LimitNOFILE= in the systemd unit, ulimit -n) or lower those caps",
            soft,
            config.upstreams.max_outstanding,
            config.server.max_tcp_connections,
            needed,
        )
    return soft
