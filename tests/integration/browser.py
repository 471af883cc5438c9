"""A real Chromium (the system's: Debian's package `chromium`), driven by Playwright.

`.ci/run` installs the package when it is missing (scripts/setup-browser.sh). Elsewhere, a
machine without it skips the browser tests with a message saying how to get it, unless
FILTERDNS_REQUIRE_BROWSER=1 (CI sets it), which makes them fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, Page, async_playwright

PHONE = {"width": 360, "height": 740}
# Chromium as a test browser on a closed network: no sandbox (root in CI), no GPU, no calls home.
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
]  # fmt: skip


def chromium_path() -> str:
    """The system Chromium, or skip (fail under FILTERDNS_REQUIRE_BROWSER=1)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found is not None:
            return found
    message = "no Chromium on this machine: sudo scripts/setup-browser.sh installs Debian's"
    if os.environ.get("FILTERDNS_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for one test."""
    path = chromium_path()
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def phone(browser: Browser, **options: object) -> AsyncIterator[Page]:
    """A page in a fresh context the size of a small phone (360 x 740)."""
    context = await browser.new_context(viewport=PHONE, **options)  # type: ignore[arg-type]
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def no_horizontal_scroll(page: Page) -> bool:
    """Whether the page fits its width (nothing wider than the viewport)."""
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return bool(widths[0] <= widths[1])
