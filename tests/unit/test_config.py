from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from orchestrator.config.loader import default_config_path, load_config, parse_config
from orchestrator.config.spec import UNLIMITED, DependencyCondition, HealthAction, RestartPolicy
from orchestrator.errors import ConfigError, ConfigIssue

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "supervisor.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def issues(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ or {})
    return caught.value.issues


def only_issue(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigIssue:
    found = issues(tmp_path, text, environ)
    assert len(found) == 1, found
    assert found[0].file == str(tmp_path / "supervisor.yaml")
    return found[0]


# --- the shipped files ---------------------------------------------------------------------------


def test_production_config_loads_on_any_os() -> None:
    config = load_config(REPO / "supervisor.yaml", {})
    assert list(config.services) == ["comfyui", "panel"]
    assert config.api.listen == "127.0.0.1:8765"
    assert config.api.token is None  # ${ORCHESTRATOR_TOKEN:-} unset
    assert str(config.logs.dir) == "F:\\Logs"
    assert config.logs.max_size == 10 * 1024 * 1024
    assert config.logs.backups == 5
    assert str(config.state_dir) == "C:\\ProgramData\\Orchestrator"
    comfy = config.services["comfyui"]
    assert comfy.command == ("F:\\ComfyUI\\run_nvidia_gpu.bat",)
    assert comfy.cwd == "F:\\ComfyUI"
    assert comfy.comfy is not None and comfy.comfy.drain_timeout_s == 600.0
    assert comfy.health is not None and comfy.health.url == "http://127.0.0.1:8188/system_stats"
    assert comfy.health.grace_s == 600.0 and comfy.health.every_s == 15.0
    assert comfy.stop.signal == "SIGINT" and comfy.stop.timeout_s == 30.0
    assert comfy.restart.policy is RestartPolicy.ON_FAILURE and comfy.restart.attempts == 3
    panel = config.services["panel"]
    assert panel.command == (
        "C:\\Program Files\\nodejs\\node.exe",
        "node_modules\\next\\dist\\bin\\next",
        "start",
    )
    assert panel.env == {"NODE_ENV": "production", "HOSTNAME": "localhost", "PORT": "3000"}
    assert panel.env_file == "C:\\Work\\Orchestrator\\apps\\admin\\.env.local"
    assert panel.ports == (3000,) and panel.depends_on == ()
    assert config.checks.disk[0].path == "F:\\" and config.checks.disk[0].min_free == 10 * 1024**3
    assert config.checks.memory is not None and config.checks.memory.max_percent == 80.0


def test_production_token_comes_from_the_environment() -> None:
    config = load_config(REPO / "supervisor.yaml", {"ORCHESTRATOR_TOKEN": "s3cret"})
    assert config.api.token == "s3cret"


def test_demo_config_loads_and_uses_this_python() -> None:
    config = load_config(REPO / "examples" / "demo.yaml", {})
    assert list(config.services) == ["web", "ticker", "flaky"]
    assert config.services["web"].command[0] == sys.executable
    assert config.services["web"].cwd == str(REPO / "examples" / "demo")
    assert config.logs.dir == REPO / "examples" / "logs"
    assert config.state_dir == REPO / "examples" / "state"
    flaky = config.services["flaky"].restart
    assert (flaky.attempts, flaky.cooldown_s, flaky.reset_after_s) == (5, 3.0, 10.0)
    for spec in config.services.values():
        script = Path(spec.cwd or "") / spec.command[-1]
        assert script.is_file(), script


# --- defaults, merging, paths ----------------------------------------------------------------------


def test_minimal_config_gets_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "services:\n  a:\n    command: [x]\n"), {})
    assert config.path == tmp_path / "supervisor.yaml"
    assert config.api.host == "127.0.0.1" and config.api.port == 8765
    assert config.logs.dir == tmp_path / "logs"
    assert config.state_dir == tmp_path / ".orchestrator"
    spec = config.services["a"]
    assert spec.command == ("x",) and spec.autostart and spec.start_period_s == 1.0
    assert spec.health is None and spec.comfy is None and spec.line == 2


def test_empty_file_means_no_services(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing yet\n"), {}).services == {}


def test_defaults_merge_key_by_key(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            defaults:
              restart: {policy: always, attempts: 7, cooldown: 2s}
              stop: {timeout: 20s, signal: INT}
              start_period: 3s
              health: {every: 30s, failures: 5}
            services:
              a:
                command: [x]
                restart: {attempts: 1}
                health: {url: "http://127.0.0.1:1/h", every: 1s}
              b:
                command: x --flag
                stop: {signal: sigkill}
                start_period: 500ms
            """,
        ),
        {},
    )
    a, b = config.services["a"], config.services["b"]
    assert a.restart.policy is RestartPolicy.ALWAYS and a.restart.attempts == 1 and a.restart.cooldown_s == 2
    assert a.restart.reset_after_s == 300.0
    assert a.stop.timeout_s == 20.0 and a.stop.signal == "SIGINT"
    assert a.start_period_s == 3.0
    assert a.health is not None and (a.health.every_s, a.health.failures) == (1.0, 5)
    assert b.command == ("x", "--flag") and b.stop.signal == "SIGKILL" and b.stop.timeout_s == 20.0
    assert b.start_period_s == 0.5 and b.health is None  # defaults.health alone adds no probe


def test_comfy_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            services:
              comfy:
                command: [python, main.py]
                comfy: true
            """,
        ),
        {},
    )
    comfy = config.services["comfy"]
    assert comfy.comfy is not None and comfy.comfy.url == "http://127.0.0.1:8188"
    assert comfy.health is not None and comfy.health.url == "http://127.0.0.1:8188/system_stats"
    assert comfy.health.grace_s == 600.0 and comfy.stop.signal == "SIGINT" and comfy.ports == (8188,)
    assert comfy.comfy.drain_timeout_s == 600.0 and comfy.comfy.busy_timeout_s == 300.0


def test_comfy_health_without_url_and_grace_from_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            defaults:
              health: {grace: 2m}
            services:
              comfyui:
                command: [run.bat]
                comfy: {url: "http://127.0.0.1:9000/"}
                health: {every: 5s, action: none}
                stop: {signal: SIGTERM}
                ports: [9001]
            """,
        ),
        {},
    )
    spec = config.services["comfyui"]
    assert spec.health is not None and spec.health.url == "http://127.0.0.1:9000/system_stats"
    assert spec.health.grace_s == 120.0 and spec.health.action is HealthAction.NONE
    assert spec.stop.signal == "SIGTERM" and spec.ports == (9001,)


def test_windows_absolute_paths_are_kept_and_relative_ones_resolved(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            r"""
            logs: {dir: 'F:\Logs'}
            state_dir: '\\server\share\state'
            checks:
              disk: [{path: 'F:\'}, {path: data}]
            services:
              a: {command: [x], cwd: 'C:\Work\App', env_file: 'D:/env/.env.local'}
              b: {command: [x], cwd: sub/dir, env_file: .env.local}
              c: {command: [x], cwd: /srv/c}
            """,
        ),
        {},
    )
    assert str(config.logs.dir) == "F:\\Logs"
    assert str(config.state_dir) == "\\\\server\\share\\state"
    assert [d.path for d in config.checks.disk] == ["F:\\", str(tmp_path / "data")]
    assert config.services["a"].cwd == "C:\\Work\\App"
    assert config.services["a"].env_file == "D:/env/.env.local"
    assert config.services["b"].cwd == str(tmp_path / "sub" / "dir")
    assert config.services["b"].env_file == str(tmp_path / ".env.local")
    assert config.services["c"].cwd == "/srv/c"


def test_variables_are_expanded(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            api: {listen: "${HOST:-127.0.0.1}:${PORT}", token: "${TOKEN}"}
            services:
              a:
                command: ["${PYTHON}", "cost: $$5", "${MISSING:-fallback}"]
                env: {DEBUG: true, N: 3, RATIO: 0.5, EMPTY: ""}
                autostart: ${AUTOSTART:-false}
                ports: ["${WEB_PORT}"]
            """,
        ),
        {"PORT": "9999", "TOKEN": "t0k", "WEB_PORT": "8080", "PYTHON": "/opt/py"},
    )
    assert config.api.listen == "127.0.0.1:9999" and config.api.token == "t0k"
    spec = config.services["a"]
    assert spec.command == ("/opt/py", "cost: $5", "fallback")
    assert spec.env == {"DEBUG": "true", "N": "3", "RATIO": "0.5", "EMPTY": ""}
    assert spec.autostart is False and spec.ports == (8080,)


def test_dependencies_and_ipv6_listen(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            api: {listen: "[::1]:8765"}
            services:
              db: {command: [db], health: {url: "http://127.0.0.1:5432/"}}
              cache: {command: [cache]}
              app:
                command: [app]
                depends_on: {db: healthy, cache: running}
              worker: {command: [w], depends_on: [app]}
            """,
        ),
        {},
    )
    assert config.api.host == "::1" and config.api.listen == "[::1]:8765"
    assert [(d.name, d.condition) for d in config.services["app"].depends_on] == [
        ("db", DependencyCondition.HEALTHY),
        ("cache", DependencyCondition.RUNNING),
    ]
    assert config.services["worker"].depends_on[0].condition is DependencyCondition.RUNNING


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            x-node: &node
              command: [node, server.js]
              restart: {attempts: 9}
            services:
              a:
                <<: *node
                restart: {attempts: 1}
              b: *node
            """,
        ),
        {},
    )
    assert config.services["a"].command == ("node", "server.js")
    assert config.services["a"].restart.attempts == 1 and config.services["b"].restart.attempts == 9


def test_parse_config_resolves_against_the_given_path(tmp_path: Path) -> None:
    config = parse_config("logs: {dir: out}\n", tmp_path / "sub" / "c.yaml", {})
    assert config.logs.dir == tmp_path / "sub" / "out"


def test_default_config_path() -> None:
    assert default_config_path({}) == Path("supervisor.yaml")
    assert default_config_path({"ORCHESTRATOR_CONFIG": "/etc/o.yaml"}) == Path("/etc/o.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml", {})


# --- invalid configs: each names the file, the line, the key path and what was expected ----------------


@pytest.mark.parametrize(
    ("text", "line", "key_path", "message"),
    [
        pytest.param(
            """
            services:
              panel:
                command: [x]
                restart:
                  polcy: always
            """,
            5,
            "services.panel.restart.polcy",
            "unknown key 'polcy'; did you mean 'policy'?",
            id="unknown-key-did-you-mean",
        ),
        pytest.param(
            "servces: {}\n",
            1,
            "servces",
            "unknown key 'servces'; did you mean 'services'?",
            id="unknown-top-level-key",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                autostart: maybe
            """,
            4,
            "services.a.autostart",
            "expected true or false, got 'maybe'",
            id="wrong-type-bool",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                restart: [always]
            """,
            4,
            "services.a.restart",
            "expected a mapping with keys policy, attempts, cooldown, reset_after, got a list",
            id="wrong-type-mapping",
        ),
        pytest.param(
            """
            services:
              panel:
                command: [x]
                restart:
                  cooldown: abc
            """,
            5,
            "services.panel.restart.cooldown",
            "expected a duration like 15s, 500ms, 5m or 1h, got 'abc'",
            id="bad-duration",
        ),
        pytest.param(
            """
            defaults:
              stop: {timeout: -5s}
            """,
            2,
            "defaults.stop.timeout",
            "expected a duration like 15s, 500ms, 5m or 1h, got '-5s' (must not be negative)",
            id="negative-duration",
        ),
        pytest.param(
            """
            logs:
              dir: logs
              max_size: 10 megs
            """,
            3,
            "logs.max_size",
            "expected a size like 512KB, 10MB or 1GB, got '10 megs' (unknown unit 'megs')",
            id="bad-size",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                restart: {policy: sometimes}
            """,
            4,
            "services.a.restart.policy",
            "expected one of always, on-failure, never, got 'sometimes'",
            id="bad-policy",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                stop:
                  signal: SIGFOO
            """,
            5,
            "services.a.stop.signal",
            "expected a signal name, one of SIGTERM, SIGINT, SIGKILL, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, "
            "SIGBREAK, got 'SIGFOO'",
            id="bad-signal",
        ),
        pytest.param(
            """
            services:
              panel:
                command: [a]
              panel:
                command: [b]
            """,
            4,
            "services.panel",
            "duplicate key 'panel' (first defined on line 2)",
            id="duplicate-service",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                depends_on: [db]
            """,
            4,
            "services.a.depends_on",
            "depends on 'db', which is not a service; known: a",
            id="unknown-depends-on",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                depends_on: [a]
            """,
            4,
            "services.a.depends_on",
            "'a' cannot depend on itself",
            id="self-dependency",
        ),
        pytest.param(
            """
            services:
              a: {command: [x], depends_on: [b]}
              b: {command: [x], depends_on: [c]}
              c: {command: [x], depends_on: [a]}
            """,
            2,
            "services.a.depends_on",
            "dependency cycle: a -> b -> c -> a",
            id="cycle",
        ),
        pytest.param(
            """
            services:
              a: {command: [x]}
              b: {command: [x], depends_on: {a: healthy}}
            """,
            3,
            "services.b.depends_on",
            "waits for 'a' to be healthy, but 'a' has no health check",
            id="healthy-without-health",
        ),
        pytest.param(
            """
            services:
              "my service":
                command: [x]
            """,
            2,
            "services.my service",
            "bad service name 'my service': use only letters, digits, '_', '.' and '-'",
            id="bad-service-name",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                ports: [80, 70000]
            """,
            4,
            "services.a.ports[1]",
            "expected a whole number from 1 to 65535, got 70000",
            id="bad-port",
        ),
        pytest.param(
            """
            services:
              a: {command: [x], ports: [3000]}
              b: {command: [y], ports: [3000]}
            """,
            3,
            "services.b.ports",
            "port 3000 is already declared by service 'a'",
            id="duplicate-port",
        ),
        pytest.param(
            """
            services:
              a: {command: [x], comfy: {}}
              b: {command: [y], comfy: {url: "http://127.0.0.1:8189"}}
            """,
            3,
            "services.b.comfy",
            "at most one service may carry comfy:, found in a and b",
            id="two-comfy",
        ),
        pytest.param(
            """
            api:
              token: ${API_TOKEN}
            """,
            2,
            "api.token",
            "environment variable API_TOKEN is not set (use ${API_TOKEN:-default})",
            id="unset-variable",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x
              b: {}
            """,
            4,
            "",
            # libyaml's wording (document.py uses yaml.CSafeLoader); the pure-Python parser's differs
            "invalid YAML: while parsing a flow sequence, did not find expected ',' or ']'"
            if yaml.__with_libyaml__
            else "invalid YAML: while parsing a flow sequence, expected ',' or ']', but got ':'",
            id="yaml-syntax",
        ),
        pytest.param(
            """
            services:
              a:
                command: []
            """,
            3,
            "services.a.command",
            "the command is empty: expected the program to run",
            id="empty-command",
        ),
        pytest.param(
            """
            services:
              a:
                command: "   "
            """,
            3,
            "services.a.command",
            "the command is empty: expected the program to run",
            id="blank-command-string",
        ),
        pytest.param(
            """
            services:
              a:
                cwd: /srv
            """,
            2,
            "services.a",
            "missing key 'command': the program to run, as a list like [python, app.py]",
            id="missing-command",
        ),
        pytest.param(
            """
            api:
              listen: localhost
            """,
            2,
            "api.listen",
            "expected HOST:PORT like 127.0.0.1:8765 or '[::1]:8765', got 'localhost'",
            id="bad-listen",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                health: {url: "ftp://host/x"}
            """,
            4,
            "services.a.health.url",
            "expected an http:// or https:// URL like http://127.0.0.1:8188, got 'ftp://host/x'",
            id="bad-health-url",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                health: {every: 5s}
            """,
            4,
            "services.a.health",
            "missing key 'url': the http:// address to probe",
            id="health-without-url",
        ),
        pytest.param(
            """
            services:
              a:
                command: [x]
                health:
                  url: http://127.0.0.1:1/
                  failures: 0
            """,
            6,
            "services.a.health.failures",
            "expected a whole number >= 1, got 0",
            id="zero-failures",
        ),
        pytest.param(
            """
            checks:
              memory: {max_percent: 150}
            """,
            2,
            "checks.memory.max_percent",
            "expected a percentage above 0 and at most 100 like 80 or 80%, got 150",
            id="bad-percent",
        ),
    ],
)
def test_invalid_config(tmp_path: Path, text: str, line: int, key_path: str, message: str) -> None:
    issue = only_issue(tmp_path, text)
    assert (issue.line, issue.key_path, issue.message) == (line, key_path, message)


def test_every_issue_is_reported_together(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        api: {listen: nowhere}
        logs: {backups: -1}
        services:
          a:
            command: [x]
            restart: {cooldown: soon, attempts: many}
            depends_on: [ghost]
          b:
            comand: [y]
        """,
    )
    assert [(i.line, i.key_path) for i in found] == [
        (1, "api.listen"),
        (2, "logs.backups"),
        (6, "services.a.restart.cooldown"),
        (6, "services.a.restart.attempts"),
        (7, "services.a.depends_on"),
        (8, "services.b"),
        (9, "services.b.comand"),
    ]
    assert found[-1].message == "unknown key 'comand'; did you mean 'command'?"
    text = str(ConfigError(found))
    assert f"{tmp_path / 'supervisor.yaml'}:9: services.b.comand: unknown key" in text


def test_unknown_key_without_a_close_match_lists_the_choices(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, "reload: {zzz: 1}\n")
    assert issue.message == "unknown key 'zzz'; expected one of: watch, poll, settle"


def test_bad_variable_syntax(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, "services:\n  a:\n    command: [x, '${1abc}', ok]\n")
    assert (issue.line, issue.key_path) == (3, "services.a.command[1]")
    assert issue.message == "bad variable reference at character 1 of the value: expected ${NAME} or ${NAME:-default}"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX splitting rules; the Windows twin is below")
def test_unbalanced_quote_in_command_string(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, 'services:\n  a:\n    command: "x \'y"\n')
    assert (issue.line, issue.key_path) == (3, "services.a.command")
    assert issue.message.startswith("cannot split the command line")


@pytest.mark.skipif(sys.platform != "win32", reason="Windows splitting rules (CommandLineToArgvW)")
def test_a_single_quote_is_a_plain_character_on_windows(tmp_path: Path) -> None:
    # CommandLineToArgvW rejects no string: ' is no quote there, and an open " runs to the end.
    (tmp_path / "supervisor.yaml").write_text('services:\n  a:\n    command: "x \'y \\"z w"\n')
    assert load_config(tmp_path / "supervisor.yaml").services["a"].command == ("x", "'y", "z w")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, "- a\n- b\n")
    assert issue.line == 1 and issue.message.startswith("expected a mapping of sections")


def test_two_documents_are_a_syntax_error(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, "services: {}\n---\nservices: {}\n")
    assert issue.line == 2 and issue.message.startswith("invalid YAML")


def test_an_unset_variable_is_reported_once(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, "api:\n  listen: ${LISTEN}\n")
    assert (issue.line, issue.key_path) == (2, "api.listen")
    assert issue.message.startswith("environment variable LISTEN is not set")


def test_a_service_that_is_not_a_mapping(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, "services:\n  a: [x]\n")
    assert (issue.line, issue.key_path) == (2, "services.a")
    assert issue.message.startswith("expected a mapping with keys command, cwd")


def test_command_strings_split_with_windows_rules_on_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    text = "services:\n  a:\n    command: '\"C:\\Program Files\\x.exe\" --dir C:\\data\\'\n"
    config = load_config(write(tmp_path, text), {})
    assert config.services["a"].command == ("C:\\Program Files\\x.exe", "--dir", "C:\\data\\")


# -- secrets: no message quotes a value from the environment, an env: value or a URL's credentials --------
SECRET = "hunter2-xyz"


@pytest.mark.parametrize(
    ("yaml_text", "key_path", "message"),
    [
        ("services:\n  a:\n    command: [x]\n    env: 'SECRET_TOKEN=${S}'\n", "services.a.env",
         "expected a mapping of NAME: value, got a string (not shown)"),
        (f"services:\n  a:\n    command: [x]\n    env: 'SECRET_TOKEN={SECRET}'\n", "services.a.env",
         "expected a mapping of NAME: value, got a string (not shown)"),
        ("services:\n  a:\n    command: [x]\n    start_period: '${S}'\n", "services.a.start_period",
         "expected a duration like 15s, 500ms, 5m or 1h, got the value of ${S} (not shown)"),
        ("services:\n  a:\n    command: [x]\n    restart: {policy: 'x${S}'}\n", "services.a.restart.policy",
         "expected one of always, on-failure, never, got the value of ${S} (not shown)"),
        ("logs: {max_size: '10${S}'}\n", "logs.max_size",
         "expected a size like 512KB, 10MB or 1GB, got the value of ${S} (not shown)"),
        ("api: {listen: '${S}'}\n", "api.listen",
         "expected HOST:PORT like 127.0.0.1:8765 or '[::1]:8765', got the value of ${S} (not shown)"),
        (f"api: 'token: {SECRET}'\n", "api", "expected a mapping with keys listen, token, got a string (not shown)"),
        (f"services:\n  a:\n    command: [x]\n    health: {{url: 'http://u:{SECRET}@h:99999/x?k={SECRET}#{SECRET}'}}\n",
         "services.a.health.url",
         "expected an http:// or https:// URL with a valid port, got 'http://***@h:99999/x?***#***'"),
        ("services:\n  a:\n    command: [x]\n    comfy: {url: 'ftp://${S}@h/'}\n", "services.a.comfy.url",
         "expected an http:// or https:// URL like http://127.0.0.1:8188, got 'ftp://***@h/'"),
        (f"services:\n  a:\n    command: [x]\n    env: {{A: '{SECRET}${{ {SECRET}}}'}}\n", "services.a.env.A",
         "bad variable reference at character 12 of the value: expected ${NAME} or ${NAME:-default}"),
    ],
)
def test_messages_never_quote_an_env_value(tmp_path: Path, yaml_text: str, key_path: str, message: str) -> None:
    issue = only_issue(tmp_path, yaml_text, {"S": SECRET})
    assert (issue.key_path, issue.message) == (key_path, message)
    assert "hunter" not in str(issue)


def test_a_command_word_from_a_variable_keeps_its_written_form_for_display(tmp_path: Path) -> None:
    from orchestrator.config.redact import shown_command

    text = "services:\n  a: {command: [x, --token, '${S}']}\n  b: {command: 'x --token ${S} \"two words\"'}\n"
    config = load_config(write(tmp_path, text), {"S": SECRET})
    assert config.services["a"].command == ("x", "--token", SECRET)  # the child gets the value
    assert shown_command(config.services["a"].command) == "x --token ${S}"
    assert config.services["b"].command == ("x", "--token", SECRET, "two words")
    assert shown_command(config.services["b"].command) == "x --token ${S} two words"


def test_expanded_text_survives_copies_and_repr_shows_it_as_written() -> None:
    import copy
    import pickle

    from orchestrator.config.redact import Expanded

    value = Expanded(SECRET, "${S}", ["S"])
    for twin in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert twin == SECRET and isinstance(twin, Expanded) and twin.template == "${S}"
    assert repr(value) == "'${S}'" and f"{value!r}" == "'${S}'"
    assert str(value) == SECRET  # what the child gets


# --- one-shot jobs and unlimited restarts (issue 11) -----------------------------------------------


def test_attempts_unlimited_in_a_service_and_in_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
        defaults: {restart: {attempts: unlimited}}
        services:
          a: {command: [x], restart: {policy: always}}
          b: {command: [x], restart: {attempts: Unlimited}}
          c: {command: [x], restart: {attempts: 2}}
    """), {})
    assert config.services["a"].restart.attempts is UNLIMITED
    assert config.services["b"].restart.attempts is UNLIMITED
    assert config.services["c"].restart.attempts == 2


@pytest.mark.parametrize(("value", "got"), [("-1", "got -1"), (".inf", "got inf"), ("forever", "got 'forever'")])
def test_attempts_explains_the_accepted_values(tmp_path: Path, value: str, got: str) -> None:
    issue = only_issue(tmp_path, f"services:\n  a: {{command: [x], restart: {{attempts: {value}}}}}\n")
    assert issue.key_path == "services.a.restart.attempts"
    assert got in issue.message and "a whole number >= 0 or `unlimited`" in issue.message, issue.message


def test_depends_on_completed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
        services:
          migrate: {command: [x], restart: {policy: on-failure}}
          app: {command: [x], depends_on: {migrate: completed}}
    """), {})
    assert config.services["app"].depends_on[0].condition is DependencyCondition.COMPLETED


def test_depends_on_completed_of_an_always_service_is_an_error(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, """
        services:
          loop: {command: [x], restart: {policy: always}}
          app: {command: [x], depends_on: {loop: completed}}
    """)
    assert issue.key_path == "services.app.depends_on" and "never completes" in issue.message
