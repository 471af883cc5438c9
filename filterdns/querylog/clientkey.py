"""The key of `log.anonymize_clients`: client addresses are stored as a keyed hash.

HMAC-SHA256 with a random key kept in `client-key` beside the database (mode 0600), so the
same device gets the same hash across restarts while the log alone does not give the address
back. A key that cannot be read or written is replaced by one for this run only (logged).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

# The query log's lines keep the logger name they always had: it is what operators filter on.
log = logging.getLogger("filterdns.querylog.store")

KEY_FILE = "client-key"


def anonymize(key: bytes, client: str) -> str:
    """The keyed hash stored instead of a client address (16 hex digits)."""
    return hmac.new(key, client.encode(), hashlib.sha256).hexdigest()[:16]


def load_key(directory: Path) -> bytes:
    """The anonymization key: `<directory>/client-key`, created (0600) when missing."""
    path = directory / KEY_FILE
    try:
        data = path.read_bytes()
        if len(data) >= 16:
            return data
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("query log: cannot read %s: %s; using a key for this run only", path, exc)
        return os.urandom(32)
    key = os.urandom(32)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, key)
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("query log: cannot create %s: %s; using a key for this run only", path, exc)
    return key
