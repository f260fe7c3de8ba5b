from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest

from orchestrator.platform.procname import process_name
from tests.support.wine import apply_wine_lacks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        apply_wine_lacks(item)  # under Wine only: the test's wine_lacks mark becomes a strict xfail


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn and our POSIX pipes need asyncio


@pytest.fixture(autouse=True)
def no_orphans() -> Iterator[None]:
    """Every test must leave no process of ours behind: an orphan fails the test that made it."""
    yield
    me = psutil.Process()
    deadline = time.monotonic() + 5.0
    left: list[psutil.Process] = []
    while time.monotonic() < deadline:
        left = [p for p in me.children(recursive=True) if _alive(p)]
        if not left:
            return
        time.sleep(0.05)
    for proc in left:
        proc.kill()
    pytest.fail(f"processes left behind: {[(p.pid, p.cmdline()) for p in left]}")


def _alive(proc: psutil.Process) -> bool:
    try:
        # conhost.exe hosts a console (one the platform may allocate for this process): not a child we ran
        return proc.status() != psutil.STATUS_ZOMBIE and (process_name(proc.pid) or "").lower() != "conhost.exe"
    except psutil.Error:
        return False
