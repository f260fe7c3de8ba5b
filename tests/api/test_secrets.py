"""Environment values (env, env_file) never appear in any response or log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.api import serving
from tests.support.helpers import child, config, service, wait_for

pytestmark = pytest.mark.anyio

ENV_SECRET = "hf_sekret-env-value-31337"
FILE_SECRET = "bfl-sekret-file-value-4242"


async def test_no_route_and_no_log_line_shows_an_env_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env_file = tmp_path / "secrets.env"
    env_file.write_text(f"BFL_API_KEY={FILE_SECRET}\n")
    web = service("web", child("ready_then_sleep.py"), env={"HF_TOKEN": ENV_SECRET}, env_file=str(env_file))
    crash = service("crash", child("exit_with.py", 2), env={"HF_TOKEN": ENV_SECRET}, attempts=1,
                    start_period_s=0.05)
    bodies: list[str] = []
    async with serving(config(tmp_path, web, crash)) as api:
        await wait_for(lambda: api.sup.status("web").state == "running", what="web running")
        await wait_for(lambda: api.sup.status("crash").state == "fatal", what="crash fatal")
        for method, path in [
            ("GET", "/api/health"), ("GET", "/api/status"), ("GET", "/api/system/web/status"),
            ("GET", "/api/system/crash/status"), ("GET", "/api/logs/web"), ("GET", "/api/logs/web?stream=stderr"),
            ("GET", "/api/events"), ("GET", "/api/metrics"), ("GET", "/api/openapi.json"),
            ("POST", "/api/system/web/restart"), ("POST", "/api/system/web/stop"), ("POST", "/api/system/web/start"),
            ("POST", "/api/system/crash/start"), ("POST", "/api/system/ignite"), ("GET", "/api/system/x/status"),
            ("GET", "/api/logs/web?lines=bad"),
        ]:
            for headers in (api.auth, {}):
                r = await api.client.request(method, path, headers=headers)
                bodies.append(f"{method} {path} {r.status_code} {r.headers} {r.text}")
        assert any("/api/status 200" in b for b in bodies)
    captured = capsys.readouterr()
    everything = "\n".join([*bodies, captured.out, captured.err, caplog.text])
    assert ENV_SECRET not in everything
    assert FILE_SECRET not in everything
