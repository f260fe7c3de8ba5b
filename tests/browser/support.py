"""Debian's Chromium driven by Playwright (async API, on the test's own event loop) against a real supervisor.

Playwright's own browser download does not work on our machines: the browser is `/usr/bin/chromium`
(apt-get install chromium; `.ci/run` installs it), or $ORCHESTRATOR_CHROMIUM. Without it the browser
tests skip on a developer machine and fail in CI (CI=true), so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("ORCHESTRATOR_CHROMIUM", "/usr/bin/chromium")
# CI runs as root: no sandbox. The rest keeps Chromium from calling home or doing work we do not test.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 10_000  # every wait on the page has this deadline


def need_browser() -> None:
    """Skip (developer machine) or fail (CI=true) when Playwright or Chromium is missing."""
    if sys.platform == "win32":  # the Wine lane: /usr/bin/chromium is a Linux program (Z:\\ is the Linux root)
        pytest.skip("the browser tests drive Debian's Chromium; the dashboard's files are the same on Windows")
    reason = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[test]')"
    if reason is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


@dataclass
class Browsed:
    page: Any  # playwright.async_api.Page (typed loosely: playwright is a test extra only)
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt messages (each dismissed)


@asynccontextmanager
async def browsing(url: str, *, width: int = 1400, height: int = 900) -> AsyncIterator[Browsed]:
    """A fresh Chromium with one page at `url`; closed (driver and browser gone) on exit."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(TIMEOUT_MS)
            seen = Browsed(page)
            page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: seen.errors.append(str(exc)))

            async def on_dialog(dialog: Any) -> None:  # Playwright awaits an async handler
                seen.dialogs.append(dialog.message)
                await dialog.dismiss()

            page.on("dialog", on_dialog)
            await page.goto(url)
            yield seen
        finally:
            await browser.close()
