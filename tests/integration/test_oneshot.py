"""One-shot jobs with real children: an exit 0 within start_period is a success, `completed`
dependencies wait for it, and a job that ends fatal keeps its dependants from starting."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.spec import Dependency, DependencyCondition
from tests.support.helpers import child, config, read_file, service, supervising, wait_for

pytestmark = pytest.mark.anyio

COMPLETED = (Dependency("job", DependencyCondition.COMPLETED),)


@pytest.mark.parametrize("policy", ["on-failure", "never"])
async def test_job_exiting_0_at_once_ends_exited_and_its_dependant_starts(tmp_path: Path, policy: str) -> None:
    job = service("job", child("exit_with.py", 0), policy=policy, start_period_s=30.0)  # done at once
    app = service("app", child("ready_then_sleep.py"), depends_on=COMPLETED)
    async with supervising(config(tmp_path, job, app)) as sup:
        await wait_for(lambda: sup.status("app").state == "running", 20, "app running after the job")
        status = sup.status("job")
        assert status.state == "exited" and status.exit_code == 0 and status.restarts == 0, status
        assert read_file(tmp_path / "logs" / "job-stdout.log").count("exit_with 0") == 1  # ran once
        assert "fatal" not in [e.fields.get("to_state") for e in sup.events.since()]


async def test_dependant_of_a_job_that_ends_fatal_does_not_start_and_says_why(tmp_path: Path) -> None:
    job = service("job", child("exit_with.py", 3), attempts=1, start_period_s=30.0)  # exits well within
    app = service("app", child("ready_then_sleep.py"), depends_on=COMPLETED)
    async with supervising(config(tmp_path, job, app)) as sup:
        await wait_for(lambda: sup.status("job").state == "fatal", 20, "the job fatal")
        # The machine's first reason is already "not started": wait for the dependency's verdict itself.
        await wait_for(lambda: "not started: job" in sup.status("app").reason, 10, "app's reason")
        status = sup.status("app")
        assert status.state == "stopped" and status.pid is None and status.waiting_for is None
        assert status.reason.startswith("not started: job is fatal (exited with code 3 during start period"), status
        assert read_file(tmp_path / "logs" / "app-stdout.log") == ""  # never spawned
