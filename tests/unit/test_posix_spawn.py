"""POSIX spawn and reaping, both ways: through a pidfd on the event loop (Linux 5.3+) and through
asyncio's child watcher (elsewhere). Real children; the exit code, the output and every waiter agree."""

from __future__ import annotations

import os
import sys

import anyio
import pytest

from tests.support.helpers import child

pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(sys.platform == "win32", reason="the POSIX platform")]

if sys.platform != "win32":
    from orchestrator.platform.posix import PidfdExit, PosixChild, PosixPlatform, _pidfd_works

    WAYS = [pytest.param(True, marks=pytest.mark.skipif(not _pidfd_works(), reason="no pidfd here"), id="pidfd"),
            pytest.param(False, id="asyncio")]
else:  # pragma: no cover - the module is skipped there
    WAYS = []


async def _read_all(child_: PosixChild) -> bytes:
    out = b""
    while chunk := await child_.stdout.read():
        out += chunk
    return out


@pytest.mark.parametrize("pidfd", WAYS)
async def test_every_waiter_gets_the_exit_code_and_the_output_is_whole(pidfd: bool) -> None:
    platform = PosixPlatform(pidfd=pidfd)
    spawned = await platform.spawn(child("exit_with.py", 3, 0.2), cwd=None, env=dict(os.environ))
    assert isinstance(spawned, PosixChild)
    assert isinstance(spawned._proc, PidfdExit) is pidfd
    codes: list[int] = []

    async def wait() -> None:
        codes.append(await spawned.wait())

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            tg.start_soon(wait)
            out = await _read_all(spawned)
    assert codes == [3, 3]
    assert out == b"exit_with 3 after 0.2\n"
    assert spawned.pid not in platform._own  # reaped and forgotten: not taken for an adopted orphan
    with pytest.raises(ChildProcessError):
        os.waitpid(spawned.pid, os.WNOHANG)  # no zombie left
    spawned.stdout.close()
    spawned.stderr.close()


@pytest.mark.parametrize("pidfd", WAYS)
async def test_a_child_killed_by_a_signal_reports_it(pidfd: bool) -> None:
    platform = PosixPlatform(pidfd=pidfd)
    spawned = await platform.spawn(child("ready_then_sleep.py"), cwd=None, env=dict(os.environ))
    platform.kill_tree(spawned)
    with anyio.fail_after(20):
        assert await spawned.wait() == -9
    spawned.stdout.close()
    spawned.stderr.close()
