"""The reload planner, purely: configs parsed from YAML strings, compared field by field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.config.envfile import env_fingerprint
from orchestrator.config.loader import parse_config
from orchestrator.config.spec import Config
from orchestrator.reload.plan import GlobalEffect, ReloadPlan, ServiceAction, effective_config, plan_reload

BASE = """
logs: {dir: logs}
services:
  api:
    command: [python, api.py]
    env: {PORT: "8000", SECRET: hunter2}
    health: {url: http://127.0.0.1:8000/health, grace: 30s}
  panel:
    command: [node, server.js]
    depends_on: [api]
    env_file: .env.local
  worker:
    command: [python, worker.py]
"""


def cfg(text: str) -> Config:
    return parse_config(textwrap.dedent(text), Path("/srv/supervisor.yaml"), {})


def edited(old: str, new: str, text: str = BASE) -> Config:
    assert old in text, old
    return cfg(text.replace(old, new))


def plan(new: Config, old: Config | None = None, **kw: object) -> ReloadPlan:
    return plan_reload(old or cfg(BASE), new, **kw)  # type: ignore[arg-type]


def actions(p: ReloadPlan) -> dict[str, str]:
    return {s.name: s.action.value for s in p.services}


def test_identical_file_keeps_everything_even_with_moved_lines() -> None:
    p = plan(cfg("\n\n# a comment\n" + BASE))
    assert actions(p) == {"api": "keep", "panel": "keep", "worker": "keep"}
    assert not p.changes_anything
    assert p.describe() == "api: keep\npanel: keep\nworker: keep"


def test_env_change_restarts_and_names_keys_never_values() -> None:
    p = plan(edited("SECRET: hunter2", "SECRET: swordfish, DEBUG: '1'"))
    assert actions(p) == {"api": "restart", "panel": "keep", "worker": "keep"}
    assert p.service("api").describe() == "api: restart (env changed: DEBUG, SECRET)"
    text = p.describe() + json.dumps(p.to_dict())
    assert "hunter2" not in text and "swordfish" not in text


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("command: [python, worker.py]", "command: [python, worker2.py]", "command changed"),
        ("command: [python, worker.py]", "command: [python, worker.py]\n    cwd: /tmp", "cwd changed"),
        ("env_file: .env.local", "env_file: .env.prod", "env_file changed"),
    ],
)
def test_process_defining_fields_restart(old: str, new: str, reason: str) -> None:
    p = plan(edited(old, new))
    changed = [s for s in p.services if s.action is ServiceAction.RESTART]
    assert len(changed) == 1 and changed[0].reasons == (reason,)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("grace: 30s", "grace: 2m", "health changed: grace"),
        ("command: [python, worker.py]", "command: [python, worker.py]\n    restart: {attempts: 9}",
         "restart changed: attempts"),
        ("command: [python, worker.py]", "command: [python, worker.py]\n    stop: {timeout: 1m, signal: INT}",
         "stop changed: timeout, signal"),
        ("command: [python, worker.py]", "command: [python, worker.py]\n    start_period: 5s",
         "start_period changed"),
        ("depends_on: [api]", "depends_on: [api, worker]", "depends_on changed"),
        ("command: [python, worker.py]", "command: [python, worker.py]\n    ports: [9000]", "ports changed"),
        ("command: [python, worker.py]", "command: [python, worker.py]\n    autostart: false",
         "autostart changed"),
        ("command: [python, worker.py]", "command: [python, worker.py]\n    health: {url: 'http://x/'}",
         "health added"),
    ],
)
def test_supervision_fields_update_in_place(old: str, new: str, reason: str) -> None:
    p = plan(edited(old, new))
    changed = [s for s in p.services if s.action is not ServiceAction.KEEP]
    assert len(changed) == 1 and changed[0].action is ServiceAction.UPDATE
    assert changed[0].reasons == (reason,)


def test_defaults_change_updates_every_service_it_reaches() -> None:
    p = plan(cfg("defaults: {restart: {cooldown: 5s}}\n" + BASE))
    assert actions(p) == {"api": "update", "panel": "update", "worker": "update"}
    assert p.service("worker").reasons == ("restart changed: cooldown",)


def test_restart_also_lists_the_supervision_changes() -> None:
    text = BASE.replace("grace: 30s", "grace: 1m").replace('PORT: "8000"', 'PORT: "8001"')
    p = plan(cfg(text))
    assert p.service("api").reasons == ("env changed: PORT", "health changed: grace")


def test_add_and_remove_with_autostart() -> None:
    new = cfg(BASE.replace("  worker:\n    command: [python, worker.py]\n", "")
              + "  cron:\n    command: [python, cron.py]\n    autostart: false\n  web:\n    command: [web]\n")
    p = plan(new)
    assert actions(p) == {"worker": "remove", "api": "keep", "panel": "keep", "cron": "add", "web": "add"}
    assert p.names(ServiceAction.ADD) == ("cron", "web")
    assert p.service("cron").describe() == "cron: add (autostart: false, not started)"
    assert p.summary() == "2 add, 1 remove, 2 keep"


def test_comfy_added_restarts_but_comfy_settings_update() -> None:
    with_comfy = BASE.replace("command: [python, worker.py]", "command: [python, worker.py]\n    comfy: true")
    p = plan(cfg(with_comfy))
    assert p.service("worker").action is ServiceAction.RESTART
    assert "comfy added" in p.service("worker").reasons
    p2 = plan(cfg(with_comfy.replace("comfy: true", "comfy: {drain_timeout: 1m}")), cfg(with_comfy))
    assert p2.service("worker").action is ServiceAction.UPDATE
    assert p2.service("worker").reasons == ("comfy changed: drain_timeout",)


def test_env_file_contents_changed_restarts_with_key_names() -> None:
    at_spawn = {"panel": env_fingerprint({"NODE_ENV": "production", "TOKEN": "a"})}
    now = {"panel": env_fingerprint({"NODE_ENV": "production", "TOKEN": "b", "NEW": "x"})}
    p = plan(cfg(BASE), env_at_spawn=at_spawn, env_now=now)
    assert p.service("panel").describe() == "panel: restart (env_file changed: NEW, TOKEN)"
    same = plan(cfg(BASE), env_at_spawn=at_spawn, env_now=dict(at_spawn))
    assert same.service("panel").action is ServiceAction.KEEP


def test_unreadable_env_file_keeps_the_running_process_and_warns() -> None:
    at_spawn = {"panel": env_fingerprint({"A": "1"})}
    p = plan(cfg(BASE), env_at_spawn=at_spawn, env_errors={"panel": "No such file or directory"})
    assert p.service("panel").action is ServiceAction.KEEP
    assert p.warnings == ("panel: env_file cannot be read (No such file or directory); the running process is kept",)
    assert "warning: panel: env_file cannot be read" in p.describe()


def test_global_sections() -> None:
    new = cfg("logs: {dir: logs2, max_size: 1MB}\napi: {listen: '127.0.0.1:9999', token: s3cret}\n"
              "checks: {memory: {max_percent: 90}}\nevents: {max: 50}\nstatus: {every: 2s}\n"
              "reload: {watch: true}\nstate_dir: elsewhere\n" + BASE.replace("logs: {dir: logs}\n", ""))
    p = plan(new)
    effects = {g.key: g.effect for g in p.globals}
    assert effects == {
        "api.listen": GlobalEffect.REBIND, "api.token": GlobalEffect.APPLY, "logs": GlobalEffect.APPLY,
        "state_dir": GlobalEffect.FULL_RESTART, "checks": GlobalEffect.APPLY, "reload": GlobalEffect.APPLY,
        "events.max": GlobalEffect.APPLY, "status.every": GlobalEffect.APPLY,
    }
    text = p.describe()
    assert "api.listen: the API rebinds after answering (127.0.0.1:8765 -> 127.0.0.1:9999)" in text
    assert "logs: applied in place (changed: dir, max_size)" in text
    assert "events.max: applied in place (1000 -> 50)" in text
    assert "state_dir: needs a full restart" in text
    assert "s3cret" not in text and "s3cret" not in json.dumps(p.to_dict())
    assert all(s.action is ServiceAction.KEEP for s in p.services)


def test_effective_config_keeps_what_needs_a_full_restart() -> None:
    old = cfg(BASE)
    new = cfg("state_dir: elsewhere\nevents: {max: 5}\n" + BASE)
    eff = effective_config(old, new)
    assert eff.state_dir == old.state_dir
    assert eff.events_max == 5 and eff.services == new.services
    # ... so the next plan still reports the pending change
    assert [g.key for g in plan_reload(eff, new).globals] == ["state_dir"]


def test_to_dict_is_json() -> None:
    p = plan(edited("command: [python, worker.py]", "command: [python, w.py]"))
    data = json.loads(json.dumps(p.to_dict()))
    assert data["summary"] == "1 restart, 2 keep"
    assert {"name": "worker", "action": "restart", "reasons": ["command changed"],
            "text": "worker: restart (command changed)"} in data["services"]
