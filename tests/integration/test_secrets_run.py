"""A real `orchestrator run` with a secret planted in every place a value can come from: no answer of
the API, no event, no file the supervisor writes, no console line and no `check` output shows one.

The sources: `env:` values, an env_file, `${VAR}` expansion in `env:` and in `command`, `api.token`,
the token file, a probe URL's userinfo and query, ComfyUI's URL (probed, sampled and proxied); each
in valid configs and in invalid ones (a malformed env_file line, a stray character after a closing
quote, `env:` written as one line of text, a `${VAR}` expanded into keys that expect a number, a
duration, a URL, a signal...). Searched: every GET route the API documents (with and without the
token), the reload routes' 422s, the events, the CLI's status/events/logs, `check` on both configs,
the console of `orchestrator run` and every file it wrote (orchestrator.log, state).

Not searched: the children's own log files (`NAME-stdout.log`, ...). A child that prints its own
environment is the child's business; the supervisor never writes a value there.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.support.helpers import CHILDREN, POSIX_ONLY, free_port, read_file

pytestmark = POSIX_ONLY  # SIGHUP and SIGTERM drive the real process; the rules are the same on Windows

PY = sys.executable
TAG = uuid.uuid4().hex[:10]
SECRETS = {  # where each one is planted -> its unique text
    source: f"sekr3t-{source}-{TAG}"
    for source in ("env", "env_var", "cmd_var", "env_file", "bad_line", "after_quote", "api_token",
                   "token_file", "url_user", "url_query", "bad_var")
}  # fmt: skip
CHILD_LOG = re.compile(r".+-(stdout|stderr)\.log(\.\d+)?$")


def supervisor_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ENV_VAR=SECRETS["env_var"], CMD_VAR=SECRETS["cmd_var"], API_VAR=SECRETS["api_token"],
               BAD_VAR=SECRETS["bad_var"])  # fmt: skip
    return env


def valid_config(tmp: Path, probe_port: int, comfy_port: int) -> str:
    (tmp / "ok.env").write_text(f"BFL_API_KEY={SECRETS['env_file']}\n")
    (tmp / "bad.env").write_text(f"# keys\nSECRET_TOKEN: {SECRETS['bad_line']}\n")
    (tmp / "quote.env").write_text(f"TOKEN='x'{SECRETS['after_quote']}\n")
    url = f"http://probe:{SECRETS['url_user']}@127.0.0.1:{probe_port}/health?key={SECRETS['url_query']}"
    sleeper = f"['{PY}', '-u', '{CHILDREN / 'ready_then_sleep.py'}'"
    return f"""\
api: {{listen: 127.0.0.1:0}}
logs: {{dir: ./logs}}
state_dir: ./state
services:
  web:
    command: {sleeper}, '--token', '${{CMD_VAR}}']
    env: {{HF_TOKEN: {SECRETS['env']}, FROM_VAR: '${{ENV_VAR}}'}}
    env_file: ok.env
    start_period: 0.2s
    health: {{url: '{url}', every: 0.2s, timeout: 1s, grace: 0s, failures: 1, action: none}}
  cmdline:
    command: "'{PY}' -u '{CHILDREN / 'ready_then_sleep.py'}' --token ${{CMD_VAR}}"
    start_period: 0.2s
  badline:
    command: {sleeper}]
    env_file: bad.env
    restart: {{attempts: 0}}
  badquote:
    command: {sleeper}]
    env_file: quote.env
    restart: {{attempts: 0}}
  comfyui:
    command: ['{PY}', '-u', '{CHILDREN / 'fake_comfy.py'}', '{tmp / 'comfy.port'}', --port, '{comfy_port}']
    comfy: {{url: 'http://comfy:{SECRETS['url_user']}@127.0.0.1:{comfy_port}'}}
    health: {{every: 0.2s, grace: 0s}}
"""


def invalid_config(tmp: Path) -> str:
    return f"""\
api: {{listen: 127.0.0.1:0, token: '${{API_VAR}}x:y'}}
logs: {{dir: ./logs, max_size: '${{BAD_VAR}}'}}
state_dir: ./state
services:
  web:
    command: ['{PY}', '--token', '${{CMD_VAR}}']
    env: "SECRET_TOKEN=${{ENV_VAR}}"
    start_period: '${{BAD_VAR}}'
    stop: {{signal: '${{BAD_VAR}}', timeout: '${{BAD_VAR}}s'}}
    restart: {{policy: '${{BAD_VAR}}', attempts: '${{BAD_VAR}}'}}
    health: {{url: 'http://u:{SECRETS['url_user']}@127.0.0.1:99999/?k={SECRETS['url_query']}'}}
  other:
    command: "'{PY}' '${{CMD_VAR}}"
    env: {{A: [{SECRETS['env']}], B: '${{ENV_VAR}}', C: "{SECRETS['env']}${{oops"}}
    autostart: '${{BAD_VAR}}'
    ports: ['${{BAD_VAR}}']
    depends_on: {{web: '${{BAD_VAR}}'}}
    comfy: {{url: 'ftp://u:{SECRETS['url_user']}@h/?q={SECRETS['url_query']}', proxy_timeout: '${{BAD_VAR}}'}}
"""


def start(cfg: Path) -> tuple[subprocess.Popen[bytes], Path]:
    out = cfg.parent / "console.out"
    with open(out, "ab") as f:
        proc = subprocess.Popen([PY, "-m", "orchestrator", "run", "-c", str(cfg)], stdout=f,
                                stderr=subprocess.STDOUT, env=supervisor_env(), start_new_session=True)
    return proc, out


def wait_url(proc: subprocess.Popen[bytes], out: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"^api: (http://\S+)$", read_file(out), re.MULTILINE)
        if match:
            return match[1]
        assert proc.poll() is None, read_file(out)
        time.sleep(0.05)
    raise AssertionError(f"no api: line in {timeout}s: {read_file(out)}")


def wait_status(client: httpx.Client, want: dict[str, str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services = {s["name"]: s for s in client.get("/api/status").json()["services"]}
        if all(services[name]["state"] == state for name, state in want.items()):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {want}: {services}")


def every_get(client: httpx.Client, auth: dict[str, str], names: list[str]) -> list[str]:
    """Every GET route the API documents, each service name in place of {name}, with and without a token."""
    paths = client.get("/api/openapi.json").json()["paths"]
    seen: list[str] = []
    for template, methods in paths.items():
        if "get" not in methods:
            continue
        for path in {template.replace("{name}", n).replace("{path}", "system_stats") for n in names}:
            for query in ("", "?stream=stderr&lines=50", "?lines=bad", "?follow=true"):
                for headers in (auth, {}):
                    seen.append(read_answer(client, path + query, headers))
    return seen


def read_answer(client: httpx.Client, url: str, headers: dict[str, str]) -> str:
    """The whole answer; of an event stream (the dashboard's live feed, a followed log), what it sends
    up to its first quiet moment: everything it has at the start, which is all a secret could be in."""
    with client.stream("GET", url, headers=headers) as r:
        if not r.headers.get("content-type", "").startswith("text/event-stream"):
            return f"GET {url} {r.status_code} {r.headers} {r.read().decode(errors='replace')}"
        body = b""
        for chunk in r.iter_raw():
            body += chunk
            # /api/live ends its opening with the events backlog; a followed log with its last lines
            if b"event: events" in body or (b"follow=true" in url.encode() and body.endswith(b"\n\n")):
                break
        return f"GET {url} {r.status_code} {r.headers} {body.decode(errors='replace')}"


def check_output(cfg: Path) -> str:
    done = subprocess.run([PY, "-m", "orchestrator", "check", "-c", str(cfg)], capture_output=True, text=True,
                          env=supervisor_env(), timeout=60)
    return f"check exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def cli(cfg: Path, *args: str) -> str:
    done = subprocess.run([PY, "-m", "orchestrator", *args, "-c", str(cfg)], capture_output=True, text=True,
                          env=supervisor_env(), timeout=60)
    return f"{args} exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def supervisor_files(tmp: Path) -> list[str]:
    """Everything the supervisor wrote (its log, the console, state files); not what the test wrote
    (config, env_files, token file), not the children's own logs."""
    texts = []
    for path in sorted(tmp.rglob("*")):
        ours = path.name in ("api-token", "supervisor.yaml") or path.suffix == ".env"
        if path.is_file() and not ours and not CHILD_LOG.match(path.name):
            texts.append(f"--- {path}\n{path.read_text(errors='replace')}")
    return texts


def leaks(texts: list[str]) -> list[str]:
    found = []
    for source, secret in SECRETS.items():
        for text in texts:
            at = text.find(secret)
            if at >= 0:
                found.append(f"{source}: ...{text[max(0, at - 300):at + 60]}...")
                break
    return found


def test_no_answer_event_log_or_console_line_shows_a_planted_secret(tmp_path: Path) -> None:
    cfg = tmp_path / "supervisor.yaml"
    cfg.write_text(valid_config(tmp_path, free_port(), free_port()))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "api-token").write_text(SECRETS["token_file"] + "\n")  # the supervisor reads it
    texts = [check_output(cfg)]
    assert "check exit 0" in texts[0] and "--token ${CMD_VAR}" in texts[0], texts[0]
    proc, out = start(cfg)
    try:
        url = wait_url(proc, out)
        auth = {"Authorization": f"Bearer {SECRETS['token_file']}"}
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            wait_status(client, {"web": "running", "cmdline": "running", "badline": "fatal", "badquote": "fatal",
                                 "comfyui": "running"})
            reasons = {s["name"]: s["reason"] for s in client.get("/api/status").json()["services"]}
            assert "bad.env:2:13: expected KEY=VALUE" in reasons["badline"], reasons
            assert "key SECRET_TOKEN" in reasons["badline"], reasons
            assert "quote.env:1:10: unexpected text after the closing quote" in reasons["badquote"], reasons
            events = client.get("/api/events").json()["events"]
            deadline = time.monotonic() + 20  # the probe of web fails (nothing listens on its port)
            while not any(e["kind"] == "health_changed" and e["service"] == "web" for e in events):
                assert time.monotonic() < deadline, events
                time.sleep(0.05)
                events = client.get("/api/events").json()["events"]
            comfy = client.get("/api/comfy/status").json()
            assert comfy["url"].startswith("http://***@127.0.0.1:") and comfy["reachable"] is True, comfy
            names = ["web", "cmdline", "badline", "badquote", "comfyui"]
            texts += every_get(client, auth, names)
            texts += [cli(cfg, "status"), cli(cfg, "events"), cli(cfg, "logs", "badline")]
            cfg.write_text(invalid_config(tmp_path))
            texts += [check_output(cfg)]
            assert "check exit 1" in texts[-1] and "services.web.env" in texts[-1], texts[-1]
            reloads = [("GET", "/api/reload/plan"), ("POST", "/api/reload"), ("POST", "/api/reload?dry_run=true")]
            for method, path in reloads:
                r = client.request(method, path, headers=auth)
                assert r.status_code == 422, r.text
                texts.append(f"{method} {path} {r.status_code} {r.text}")
            os.kill(proc.pid, signal.SIGHUP)  # a reload from the signal: config_error event and log line
            deadline = time.monotonic() + 20
            while not any(e["kind"] == "config_error" and "signal" in json.dumps(e) for e in events):
                assert time.monotonic() < deadline, events
                time.sleep(0.05)
                events = client.get("/api/events").json()["events"]
            texts += every_get(client, auth, names)
            texts += [cli(cfg, "status"), cli(cfg, "events")]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    texts += supervisor_files(tmp_path)
    [log] = [t for t in texts if t.startswith("--- ") and t.split("\n", 1)[0].endswith("orchestrator.log")]
    # The log was searched where the secrets would have been: the refused env_files, the invalid reload.
    assert "bad.env:2:13" in log and "config_error" in log and "services.web.env" in log, log[-3000:]
    assert leaks(texts) == []
