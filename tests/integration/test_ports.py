"""A declared port that another process already listens on blocks the start, naming the holder."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.core.ports import PortHolder, port_conflict, port_holders
from tests.support.helpers import child, config, free_port, read_file, service, supervising, wait_for
from tests.support.wine import TCP_OWNER

pytestmark = pytest.mark.anyio


@pytest.mark.wine_lacks(*TCP_OWNER)
async def test_port_held_by_another_process_blocks_the_start_with_its_pid(tmp_path: Path) -> None:
    portfile = tmp_path / "port"
    async with await anyio.open_process(child("hold_port.py", portfile)) as holder:
        try:
            await wait_for(lambda: bool(read_file(portfile)), what="port file")
            port = int(portfile.read_text())
            blocked = service("web", child("ready_then_sleep.py"), ports=(port,))
            other = service("other", child("ready_then_sleep.py"), ports=(free_port(),))
            async with supervising(config(tmp_path, blocked, other)) as sup:
                await wait_for(lambda: sup.status("web").state == "fatal", what="web fatal")
                st = sup.status("web")
                assert st.pid is None and st.restarts == 0
                assert st.reason.startswith(f"port {port} is already in use by pid {holder.pid} (python"), st.reason
                await wait_for(lambda: sup.status("other").state == "running", what="other running")
                holder.kill()
                await holder.wait()
                assert (await sup.start("web")).pid is not None  # the port is free again: it starts
        finally:
            if holder.returncode is None:
                holder.kill()
            with anyio.CancelScope(shield=True):
                await holder.wait()


def test_free_ports_have_no_holder() -> None:
    port = free_port()
    assert port_holders([port]) == [] and port_conflict([port]) is None
    assert port_holders([]) == []
    assert PortHolder(3000, None, None).describe() == (
        "port 3000 is already in use: held by another process (the OS will not say which)")
