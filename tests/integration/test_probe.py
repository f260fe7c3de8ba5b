"""One probe against a real HTTP child: what each kind of failure reads like."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from orchestrator.config.spec import HealthSpec
from orchestrator.health.probe import describe_http_error, probe_once
from tests.support.helpers import child, free_port, read_file, wait_for

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def health_server(tmp_path: Path) -> AsyncIterator[str]:
    """A health_server.py child; yields its base URL. Its mode is tmp_path/'mode'."""
    portfile = tmp_path / "port"
    async with await anyio.open_process(child("health_server.py", 0, "--port-file", portfile,
                                              "--mode-file", tmp_path / "mode")) as proc:
        try:
            await wait_for(lambda: bool(read_file(portfile)), what="port file")
            yield f"http://127.0.0.1:{portfile.read_text()}"
        finally:
            proc.kill()
            with anyio.CancelScope(shield=True):
                await proc.wait()


def spec(url: str, timeout: float = 0.3, expect: tuple[int, ...] = ()) -> HealthSpec:
    return HealthSpec(url=url, timeout_s=timeout, expect_status=expect)


async def test_ok_500_expected_status_and_timeout(tmp_path: Path) -> None:
    mode = tmp_path / "mode"
    async with health_server(tmp_path) as url, httpx.AsyncClient() as client:
        good = await probe_once(client, spec(url))
        assert good.ok and good.status == 200 and good.error is None and good.duration_s < 0.3
        mode.write_text("fail")
        bad = await probe_once(client, spec(url))
        assert not bad.ok and bad.error == "status 500" and not bad.timed_out
        assert (await probe_once(client, spec(url, expect=(500,)))).ok
        mode.write_text("hang")
        hung = await probe_once(client, spec(url, timeout=0.25))
        assert not hung.ok and hung.timed_out and hung.error == "timeout after 0.25s"
        assert 0.25 <= hung.duration_s < 2.0


async def test_refused() -> None:
    async with httpx.AsyncClient() as client:
        refused = await probe_once(client, spec(f"http://127.0.0.1:{free_port()}/health"))
        assert refused.error == "connection refused" and not refused.timed_out


def test_connect_errors_name_the_innermost_cause() -> None:
    def connect_error(cause: BaseException) -> httpx.ConnectError:
        try:
            try:
                raise OSError("All connection attempts failed") from cause
            except OSError as exc:
                raise httpx.ConnectError(str(exc)) from exc
        except httpx.ConnectError as exc:
            return exc

    both_refused = ExceptionGroup("multiple", [ConnectionRefusedError(111, "a"), ConnectionRefusedError(111, "b")])
    assert describe_http_error(connect_error(both_refused)) == "connection refused"
    unreachable = OSError(113, "No route to host")
    mixed = ExceptionGroup("multiple", [ConnectionRefusedError(111, "a"), unreachable])
    assert describe_http_error(connect_error(mixed)) == "cannot connect: [Errno 113] No route to host"
    assert describe_http_error(httpx.RemoteProtocolError("Server disconnected")) == (
        "RemoteProtocolError: Server disconnected")
