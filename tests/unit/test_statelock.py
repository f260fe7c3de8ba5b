"""The state directory's lock with real files: held, refused with the holder named, released."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from orchestrator.errors import OrchestratorError
from orchestrator.platform.statelock import LOCK_FILE, StateDirInUse, StateLock


def test_a_second_lock_is_refused_naming_the_holder_until_the_first_is_released(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = StateLock.acquire(state, api="127.0.0.1:0")  # creates the directory
    try:
        first.note(api="http://127.0.0.1:8765")
        with pytest.raises(StateDirInUse) as caught:
            StateLock.acquire(state, api="127.0.0.1:9999")  # another open file: refused, even in-process
        message = str(caught.value)
        assert message.startswith(f"state directory {state} is in use by orchestrator pid {os.getpid()} (started ")
        assert message.endswith(", api http://127.0.0.1:8765)")
    finally:
        first.release()
    first.release()  # idempotent
    again = StateLock.acquire(state, api="127.0.0.1:0")
    again.release()


def test_a_holder_whose_text_is_unreadable_is_still_refused(tmp_path: Path) -> None:
    first = StateLock.acquire(tmp_path, api="x")
    try:
        (tmp_path / LOCK_FILE).write_text("{half")  # what a reader sees mid-write
        with pytest.raises(StateDirInUse, match=r"in use by orchestrator pid unknown$"):
            StateLock.acquire(tmp_path, api="y")
    finally:
        first.release()


def test_a_state_directory_that_cannot_be_created_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    with pytest.raises(OrchestratorError, match=rf"cannot lock the state directory {re.escape(str(state))}"):
        StateLock.acquire(state, api="x")
