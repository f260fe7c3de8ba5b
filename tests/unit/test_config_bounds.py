"""The bounds on reading a config (config/bounds.py): 1 MiB of text, 100,000 nodes added by aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.config import document
from orchestrator.config.bounds import MAX_ALIAS_NODES, MAX_CONFIG_BYTES
from orchestrator.config.loader import load_config, parse_config
from orchestrator.errors import ConfigError, ConfigIssue


def issues_of(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return caught.value.issues


def bomb(levels: int, width: int = 9) -> str:
    """The billion-laughs shape: each level an anchored list of `width` aliases to the one before."""
    lines = ["x-a: &a [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"x-l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * width) + "]")
    return "services: {}\n" + "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_line_of_its_expansion(tmp_path: Path) -> None:
    # 9**9 = 387 million nodes once expanded from 506 bytes; main took 51 s and 1.2 GB at 7 levels.
    text = bomb(9)
    assert len(text) < 600
    path = tmp_path / "supervisor.yaml"
    path.write_text(text)
    [issue] = issues_of(path)
    # The innermost list whose expansion alone passes the budget: level 6 (9**6 = 531,441 lols), line 7.
    assert (issue.line, issue.key_path) == (7, "")
    assert "aliases may add at most 100,000 nodes to a config (an alias bomb?)" in issue.message


def test_aliases_within_the_budget_are_fine(tmp_path: Path) -> None:
    # 9**5 = 59,049 nodes: under the budget; merge keys of the docker-compose kind cost a handful each.
    text = bomb(5) + "".join(
        f"  s{i}: {{<<: *d, command: [x]}}\n" for i in range(200)
    ).join(["x-defaults: &d {autostart: false, restart: {policy: never}}\nservices:\n", ""])
    config = parse_config(text.replace("services: {}\n", ""), tmp_path / "c.yaml", {})
    assert len(config.services) == 200
    assert config.services["s7"].autostart is False


@pytest.mark.parametrize("text", ["&a [*a, *a]\n", "x-a: &a {b: *a, c: *a}\nservices: {}\n"])
def test_a_recursive_alias_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml:1: a recursive alias"):
        parse_config(text, tmp_path / "c.yaml", {})


def test_a_config_over_1_mib_is_refused_with_the_line_where_it_passes_the_bound(tmp_path: Path) -> None:
    line = "# " + "x" * 97 + "\n"  # 100 bytes
    path = tmp_path / "supervisor.yaml"
    at_bound = "services: {}\n" + line * ((MAX_CONFIG_BYTES - 13) // 100)
    at_bound += "#" * (MAX_CONFIG_BYTES - len(at_bound) - 1) + "\n"
    assert len(at_bound) == MAX_CONFIG_BYTES
    # Bytes, not text: on Windows text mode would write CRLF and move the bound by a byte per line.
    path.write_bytes(at_bound.encode())
    assert load_config(path, {}).services == {}  # exactly 1 MiB: accepted
    path.write_bytes((at_bound + "\n").encode())
    [issue] = issues_of(path)
    assert issue.line == at_bound.count("\n") + 1  # the line holding byte 1 MiB + 1
    assert "passes 1 MiB (1048576 bytes) on this line; a config may be at most 1 MiB" in issue.message
    with pytest.raises(ConfigError, match="at most 1 MiB"):  # text handed over directly: the same bound
        parse_config(at_bound + "\n", path, {})


def test_a_50_mb_config_is_refused_without_being_parsed(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    with path.open("w") as f:
        f.write("services:\n")
        for i in range(500_000):
            f.write(f"  s{i}: {{command: [python, -m, http.server, '{i}'], autostart: false}}\n")  # ~60 MB
    [issue] = issues_of(path)
    assert issue.line is not None and issue.line > 10_000
    assert "at most 1 MiB" in issue.message


def test_libyaml_parses_when_available_and_lines_stay_right(tmp_path: Path) -> None:
    if yaml.__with_libyaml__:
        assert document._LOADER is yaml.CSafeLoader
    text = "services:\n  a:\n    command: [x]\n\n\n    restart: {policy: sometimes}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "c.yaml", {})
    [issue] = caught.value.issues
    assert (issue.line, issue.key_path) == (6, "services.a.restart.policy")


def test_the_budget_is_what_the_docs_say() -> None:
    assert (MAX_CONFIG_BYTES, MAX_ALIAS_NODES) == (1024 * 1024, 100_000)
