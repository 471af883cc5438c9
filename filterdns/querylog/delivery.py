"""The actions of a fired alert: a command fed the event on stdin, a webhook POSTed the event.

Both take the event as JSON bytes and return None on success, else one line saying why not;
nothing is raised. A command runs without a shell and is killed after the rule's `timeout`. A
webhook is POSTed with httpx, the HTTP client DNS over HTTPS uses: one client per delivery,
`timeout` for each step of each attempt (connect, send, each read), errors and 5xx answers
retried `retries` times with a back-off that doubles, 4xx answers and unusable URLs not
retried. Redirects are followed (a 303 as GET, as browsers do); the proxy environment
variables apply; certificates are checked against the system's store, as the standard
library's client did.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import shlex
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx (~5 MB) is imported when a webhook is first POSTed
    import httpx

log = logging.getLogger(__name__)

STDERR_TAIL = 200  # characters of a failed command's stderr kept in the error text
BODY_TAIL = 200  # bytes of a failed webhook's answer kept in the error text
HEADERS = {"Content-Type": "application/json", "User-Agent": "filterdns-alerts"}


async def run_command(command: str, body: bytes, timeout: float) -> str | None:
    """Run `command` with `body` on stdin; None on success, else why not."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return f"command {command!r} cannot be split: {exc}"
    if not argv:
        return "command is empty"
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return f"command {argv[0]} could not start: {exc}"
    try:
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(body), timeout)
        except TimeoutError:
            return f"command {argv[0]} timed out after {timeout:g} s (killed)"
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.communicate()  # reap it and close its pipes
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-STDERR_TAIL:]
        said = f": {tail}" if tail else ""
        return f"command {argv[0]} exited with status {proc.returncode}{said}"
    return None


async def post_webhook(
    url: str, body: bytes, *, timeout: float, retries: int, backoff: float, name: str
) -> str | None:
    """POST the event to `url`, retrying errors and 5xx with back-off; None on success.

    `backoff` is the wait before the second attempt, doubled before each next one; `name` is
    the rule's, for the debug line of each failed attempt.
    """
    try:
        client = await _client(timeout)
    except Exception as exc:  # e.g. a proxy variable naming a scheme httpx cannot use
        return f"webhook {url} is not usable: {exc}"
    error: str | None = "not sent"
    async with client:
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(backoff * 2 ** (attempt - 1))
            error, retry = await _post_once(client, url, body)
            if error is None:
                return None
            log.debug("alert %s: webhook attempt %d failed: %s", name, attempt + 1, error)
            if not retry:
                return error
    tries = retries + 1
    return f"{error} (after {tries} attempt{'s' if tries != 1 else ''})"


def _prepare() -> ssl.SSLContext:
    """Import httpx and load the system's certificates: blocking, so run in a thread."""
    importlib.import_module("httpx")
    return ssl.create_default_context()


async def _client(timeout: float) -> httpx.AsyncClient:
    # In a thread: the first import of httpx and reading the certificate store take a tenth of
    # a second, which the event loop spends answering instead.
    context = await asyncio.to_thread(_prepare)
    import httpx  # noqa: PLC0415 - imported by _prepare already; only webhooks pay for it

    return httpx.AsyncClient(
        verify=context, timeout=timeout, follow_redirects=True, headers=HEADERS
    )


async def _post_once(client: httpx.AsyncClient, url: str, body: bytes) -> tuple[str | None, bool]:
    """One POST: (None, _) on success (2xx), else (why, worth retrying)."""
    import httpx  # noqa: PLC0415 - see _client

    try:
        async with client.stream("POST", url, content=body) as answer:
            if 200 <= answer.status_code < 300:
                return None, False
            said = await _first_bytes(answer)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        return f"webhook {url} is not usable: {exc}", False  # retrying will not help
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        return f"webhook {url} unreachable: {_text(exc)}", True
    except httpx.TimeoutException as exc:  # sending, or waiting for the answer
        return f"webhook {url} failed: {str(exc) or 'timed out'}", True
    except httpx.TooManyRedirects as exc:
        return f"webhook {url} failed: {_text(exc)}", False
    except (httpx.HTTPError, OSError) as exc:  # resets, broken answers
        return f"webhook {url} failed: {_text(exc)}", True
    said = f": {said}" if said else ""
    code = answer.status_code
    return f"webhook {url} answered {code} {answer.reason_phrase}{said}", code >= 500


async def _first_bytes(answer: httpx.Response) -> str:
    """The start of an error answer's body (at most BODY_TAIL bytes are read), as text."""
    data = b""
    async for chunk in answer.aiter_bytes():
        data += chunk
        if len(data) >= BODY_TAIL:
            break
    return data[:BODY_TAIL].decode(errors="replace").strip()


def _text(exc: BaseException) -> str:
    """What went wrong, with the system's reason when httpx wraps one: "All connection
    attempts failed (Connection refused)"."""
    text = str(exc) or type(exc).__name__
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            reason = os.strerror(seen.errno)
            return text if reason in text else f"{text} ({reason})"
        seen = seen.__cause__ or seen.__context__
    return text
