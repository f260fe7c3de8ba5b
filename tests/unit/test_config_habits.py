"""Config errors that help while you type: Docker Compose's key names, `restart: always`, a misspelled
section with the rest still checked, and an unset ${VAR} said once (not also as an empty command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.loader import parse_config
from orchestrator.config.spec import RestartPolicy
from orchestrator.errors import ConfigError


def issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("/cfg/supervisor.yaml"), {})
    return [f"{i.key_path}: {i.message}" for i in caught.value.issues]


def test_compose_keys_get_ours_suggested() -> None:
    found = issues("services:\n  web:\n    command: [x]\n    environment: {A: '1'}\n    working_dir: /tmp\n"
                   "    healthcheck: {url: 'http://127.0.0.1:1/'}\n")
    assert found == [
        f"services.web.{theirs}: unknown key '{theirs}'; did you mean '{ours}'? "
        f"(Docker Compose's {theirs} is {ours} here)"
        for theirs, ours in (("environment", "env"), ("working_dir", "cwd"), ("healthcheck", "health"))
    ]


def test_restart_always_is_a_shorthand_for_the_policy() -> None:
    cfg = parse_config("defaults: {restart: on-failure}\nservices:\n  web: {command: [x], restart: always}\n"
                       "  job: {command: [y]}\n", Path("/cfg/supervisor.yaml"), {})
    assert cfg.services["web"].restart.policy is RestartPolicy.ALWAYS
    assert cfg.services["job"].restart.policy is RestartPolicy.ON_FAILURE
    assert issues("services:\n  web: {command: [x], restart: sometimes}\n") == [
        "services.web.restart.policy: " + issues("services:\n  web: {command: [x], restart: {policy: sometimes}}\n")[0]
        .split(": ", 1)[1]]


def test_a_misspelled_section_is_suggested_and_the_rest_still_checked() -> None:
    found = issues("servces: {}\nservices:\n  web: {command: [x], restart: {policy: sometimes}}\n")
    assert found[0] == "servces: unknown key 'servces'; did you mean 'services'?"
    assert found[1].startswith("services.web.restart.policy: ")


def test_an_unset_variable_is_reported_alone() -> None:
    assert issues("services:\n  web: {command: ['${NOPE}', x]}\n") == [
        "services.web.command[0]: environment variable NOPE is not set (use ${NOPE:-default})"]
    assert issues("services:\n  web: {command: ['']}\n") == [
        "services.web.command: the command is empty: expected the program to run"]
