"""config/locate.py's plain reader against PyYAML: where it answers, it answers what YAML reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config.locate import _line_scan, _plain_top, _yaml_top

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("*.yaml")])


def _yaml_view(text: str) -> dict[str, Any]:
    top = _yaml_top(text)
    assert top is not None
    return {k: top[k] if k == "state_dir" else _api_view(top[k]) for k in ("api", "state_dir") if k in top}


def _api_view(api: Any) -> Any:
    return {k: api.get(k) for k in ("listen", "token") if k in api} if isinstance(api, dict) else api


def _plain_view(text: str) -> dict[str, Any] | None:
    top = _plain_top(text)
    if top is None:
        return None
    return {k: top[k] if k == "state_dir" else _api_view(top[k]) for k in top}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_read_as_yaml_reads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8-sig")
    assert _plain_view(text) is not None  # `status` on them pays for no YAML
    assert _plain_view(text) == _yaml_view(text)


PLAIN = [
    "api: {listen: '127.0.0.1:18765'}\nlogs: {dir: ./logs, max_size: 1000}\nstate_dir: ./state\nservices:\n"
    "  a: {command: ['/bin/sleep', '1']}\n",
    "state_dir: C:\\ProgramData\\orchestrator  # production\napi:\n  listen: 0.0.0.0:8765\n  token: ${TOKEN}\n",
    "# head\n\napi:\n  # a comment\n  listen: \"[::1]:9000\"\n  cors: [a, b]\n  other:\n    deep: 1\nservices: {}\n",
    "state_dir:\napi:\n",
    "api: {}\nstate_dir: '.x'\n",
    "services:\n  web:\n    command: |\n      echo hi\n      api: 1\nstate_dir: st\n",
    "api: {listen: 127.0.0.1:1, token: abc-def}\n",
    "state_dir: ${LOCALAPPDATA}/orchestrator\nnotes: \"a {b\"\n",
    "state_dir: 'C:\\ProgramData\\Orchestrator'\n",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_forms_are_read(text: str) -> None:
    assert _plain_view(text) is not None
    assert _plain_view(text) == _yaml_view(text)


REFUSED = [
    "---\napi: {listen: 127.0.0.1:1}\n",  # a document marker
    "api: &a {listen: 127.0.0.1:1}\n",  # an anchor
    "api:\n  listen: *x\n",  # an alias (YAML fails: the line scan's business)
    "state_dir: 0777\n",  # an int for YAML
    "state_dir: yes\n",  # a bool
    "state_dir: 1.50\n",  # a float: 1.5
    "state_dir: ~\n",  # null
    "state_dir: 2024-01-02\n",  # a date
    "api: {token: 0x1F}\n",  # 31
    "api:\n  token: 12_345\n",  # 12345
    "state_dir: a\n  b\n",  # a plain scalar on two lines: "a b"
    "api:\n  listen: 127.0.0.1\n    :8765\n",  # the same under api
    "state_dir: 'it''s'\n",  # a quote escaped
    "state_dir: \"a\\tb\"\n",  # a backslash escape
    "api: {listen: 127.0.0.1:1}\napi: {listen: 127.0.0.1:2}\n",  # a duplicate key
    "services: [a,\nb]\nstate_dir: x\n",  # a flow sequence over two lines
    "notes: \"a\nstate_dir: b\"\n",  # quoted text over two lines
    "\"state_dir\": x\n",  # a quoted key
    "api:\n  listen: 127.0.0.1:1\n   token: x\n",  # an odd indent
    "api: !!map {listen: 127.0.0.1:1}\n",  # a tag
    "state_dir: x # y 'z'\n",  # quotes after the comment mark
    "api: {listen: '127.0.0.1:1', token: 'a,b'}\n",  # a comma inside quotes in a flow mapping
    "<<: {state_dir: x}\n",  # a merge key
    "services: {a: 1}\nservices: {b: 2}\n",  # a duplicate key we do not read
]


@pytest.mark.parametrize("text", REFUSED)
def test_other_forms_are_left_to_yaml(text: str) -> None:
    assert _plain_top(text) is None


def test_refused_forms_mean_something_else_to_yaml() -> None:
    """The reason to refuse them: read line by line, several would give another value than YAML's."""
    differ = 0
    for text in REFUSED:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        naive = _line_scan(text)
        if isinstance(data, dict) and naive.get("state_dir") != data.get("state_dir"):
            differ += 1
    assert differ >= 5
