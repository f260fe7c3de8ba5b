"""A real Prometheus server (Debian's package `prometheus`) on a free loopback port, and its query API.

`running_prometheus(config, tmp)` starts it with a storage dir of its own, waits until `/-/ready` answers
(bounded), yields its base URL and always ends it: SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process

from tests.support.helpers import free_port, read_file

__all__ = ["PromQLError", "prometheus_binary", "query", "running_prometheus"]

READY_TIMEOUT_S = 30.0  # a cold start on a busy 2-core machine takes 1-3 s
STOP_TIMEOUT_S = 10.0


class PromQLError(AssertionError):
    def __init__(self, expr: str, detail: str) -> None:
        super().__init__(f"{detail}\n  in: {expr}")


def prometheus_binary(name: str = "prometheus") -> str:
    """A binary of Debian's package `prometheus` (the server, or `promtool`); skipped outside CI when missing,
    a failure in CI (CI=true)."""
    if sys.platform == "win32":  # the Wine lane: Debian's binaries are Linux programs
        pytest.skip(f"{name} is Debian's Linux binary; the Linux lane runs this test")
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: .ci/run installs the Debian package `prometheus`")
        pytest.skip(f"{name} is not installed (apt-get install prometheus); CI runs this test")
    return path


@asynccontextmanager
async def running_prometheus(config: Path, tmp: Path) -> AsyncIterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "prometheus.log"
    argv = [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with log.open("wb") as out:
        proc = await anyio.open_process(argv, stdin=None, stdout=out, stderr=out)
        try:
            await _wait_ready(url, proc, log)
            yield url
        finally:
            with anyio.move_on_after(STOP_TIMEOUT_S, shield=True):
                if proc.returncode is None:
                    proc.terminate()
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                with anyio.move_on_after(STOP_TIMEOUT_S, shield=True):
                    await proc.wait()


async def _wait_ready(url: str, proc: Process, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=2) as http:
        while True:
            if proc.returncode is not None:
                raise AssertionError(f"prometheus exited with {proc.returncode}:\n{read_file(log)}")
            try:
                if (await http.get("/-/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready after {READY_TIMEOUT_S}s:\n{read_file(log)}")
            await anyio.sleep(0.1)


async def query(http: httpx.AsyncClient, expr: str) -> list[Any]:
    """Evaluate `expr` now (GET /api/v1/query); its samples, or one element for a scalar; PromQLError on error."""
    response = await http.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise PromQLError(expr, f"{response.status_code} {body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] in ("vector", "matrix"):
        return list(data["result"])
    return [data["result"]]
