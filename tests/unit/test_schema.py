"""The config's JSON Schema: generated from the loader's tables, shipped unchanged in the package and
docs/, accepting the example and production configs, and rejecting what the loader rejects where a
schema can tell (unknown keys, wrong kinds, bad durations, sizes and policies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config import schema
from orchestrator.config.loader import parse_config
from orchestrator.errors import ConfigError
from tests.support.wine import RUST_PRNG, on_wine

if on_wine():  # jsonschema needs rpds, a Rust extension that cannot load under Wine
    pytest.skip(f"Wine lacks {RUST_PRNG[0]}: {RUST_PRNG[1]}", allow_module_level=True)

import jsonschema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = schema.build_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_the_shipped_schema_is_the_generated_one() -> None:
    for shipped in (REPO / "docs" / "config.schema.json", REPO / "orchestrator" / "config" / "config.schema.json"):
        assert json.loads(shipped.read_text()) == SCHEMA, f"{shipped}: regenerate with `orchestrator schema`"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", [*sorted((REPO / "examples").glob("*.yaml")), REPO / "supervisor.yaml"],
                         ids=lambda p: p.name)
def test_the_examples_and_the_production_config_pass(path: Path) -> None:
    assert list(VALIDATOR.iter_errors(yaml.safe_load(path.read_text()))) == []
    assert path.read_text().startswith("# yaml-language-server: $schema=")


def check_both(text: str) -> tuple[bool, bool]:
    """(the loader accepts it, the schema accepts it)."""
    try:
        parse_config(text, Path("/cfg/supervisor.yaml"), {"PORT": "80"})
        loaded = True
    except ConfigError:
        loaded = False
    return loaded, VALIDATOR.is_valid(yaml.safe_load(text))


REJECTED = [
    "servces: {}\nservices: {web: {command: [x]}}\n",
    "services: {web: {command: [x], environment: {A: b}}}\n",
    "services: {web: {command: [x], restart: {policy: sometimes}}}\n",
    "services: {web: {command: [x], restart: sometimes}}\n",
    "services: {web: {command: [x], stop: {timeout: forever}}}\n",
    "services: {web: {command: [x], start_period: 30s2}}\n",
    "services: {web: {command: []}}\n",
    "services: {web: {cwd: /tmp}}\n",
    "services: {web: {command: [x], ports: [70000]}}\n",
    "services: {web: {command: [x], depends_on: {db: ready}}, db: {command: [y]}}\n",
    "services: {web: {command: [x], health: {url: ftp://x}}}\n",
    "services: {web: {command: [x], stop: {signal: SIGFOO}}}\n",
    "services: {'bad name': {command: [x]}}\n",
    "logs: {max_size: 10 parsecs}\nservices: {}\n",
    "api: {listen: localhost}\nservices: {}\n",
    "checks: {memory: {max_percent: 120}}\nservices: {}\n",
    "services: {web: {command: [x], autostart: maybe}}\n",
    "services: {web: {command: [x], restart: {attempts: forever}}}\n",
]
ACCEPTED = [
    "services: {web: {command: [x], restart: always, start_period: 2m30s, ports: 8080}}\n",
    "x-common: &c {command: [x]}\nservices: {web: *c}\n",
    "services: {web: {command: 'python -m http.server', env: {A: 1, B: true, C: null}, comfy: true}}\n",
    "services: {web: {command: [x], ports: ['${PORT}']}}\nlogs: {max_size: 10MB, backups: 3}\n",
    "defaults: {restart: on-failure, health: {every: 5s}}\nservices: {web: {command: [x], health: false}}\n",
    "services: {web: {command: [x], restart: {policy: always, attempts: unlimited}}}\n",
    "services: {job: {command: [x]}, web: {command: [y], depends_on: {job: completed}}}\n",
]


@pytest.mark.parametrize("text", REJECTED)
def test_what_the_loader_rejects_the_schema_rejects_too(text: str) -> None:
    assert check_both(text) == (False, False)


@pytest.mark.parametrize("text", ACCEPTED)
def test_what_the_loader_accepts_the_schema_accepts(text: str) -> None:
    assert check_both(text) == (True, True)


def test_a_converter_without_a_schema_is_refused() -> None:
    def novel(value: Any) -> Any:
        return value

    with pytest.raises(ValueError, match="no schema for the converter"):
        schema._fragment(novel, "services.web.novel")
