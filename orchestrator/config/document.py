"""YAML text to plain values plus the line of every key, for config.py.

PyYAML forgets where values came from and silently keeps the last of two equal keys, so the node tree
is composed and walked here: each mapping key and sequence item gets its 1-based line recorded under
its key path, duplicate keys become issues, and ${VAR} is expanded in every string value.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from orchestrator.config.bounds import alias_problem, size_problem
from orchestrator.config.text import expand_vars
from orchestrator.errors import ConfigIssue

__all__ = ["KeyPath", "Parsed", "expand_vars", "format_path", "load_yaml"]

KeyPath = tuple[str | int, ...]

# libyaml's parser where PyYAML was built with it (the wheels are): composing a 1 MiB config took 1.6 s
# against 13.9 s for the pure-Python one (bench/config_load.py), and
# its nodes carry the same line marks. The pure-Python parser otherwise.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_DEPTH = 64  # a recursive alias (&a [*a]) would otherwise recurse forever


@dataclass
class Parsed:
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)


def format_path(path: KeyPath) -> str:
    """("services", "web", "ports", 1) -> "services.web.ports[1]"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_yaml(text: str, file: str, environ: Mapping[str, str]) -> Parsed:
    """Parse one YAML document; syntax errors and the bounds of bounds.py come back as issues with data None."""
    too_big = size_problem(text.encode("utf-8", "surrogatepass"))
    if too_big is not None:
        return Parsed(None, {}, [ConfigIssue(file, too_big[0], "", too_big[1])])
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        parsed = Parsed(None, {(): 1})
        if root is not None:
            bomb = alias_problem(root) if "*" in text else None  # no `*`, no alias: nothing to count
            if bomb is not None:
                return Parsed(None, {}, [ConfigIssue(file, bomb[0].start_mark.line + 1, "", bomb[1])])
            parsed.data = _Walker(loader, file, environ, parsed).walk(root, (), 0)
        return parsed
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = ", ".join(p for p in (exc.context, exc.problem) if p)
        return Parsed(None, {}, [ConfigIssue(file, line, "", f"invalid YAML: {problem}")])
    except yaml.YAMLError as exc:
        return Parsed(None, {}, [ConfigIssue(file, None, "", f"invalid YAML: {type(exc).__name__}")])
    except RecursionError:  # the pure-Python composer on thousands of nested brackets
        return Parsed(None, {}, [ConfigIssue(file, None, "", "invalid YAML: nested too deeply")])
    finally:
        loader.dispose()


class _Walker:
    def __init__(self, loader: yaml.SafeLoader, file: str, environ: Mapping[str, str], out: Parsed) -> None:
        self.loader = loader
        self.file = file
        self.environ = environ
        self.out = out

    def issue(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        line = node.start_mark.line + 1
        self.out.issues.append(ConfigIssue(self.file, line, format_path(path), message))

    def walk(self, node: yaml.Node, path: KeyPath, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            self.issue(node, path, "nested too deeply (a recursive alias?)")
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.out.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.walk(item, (*path, index), depth + 1))
            return items
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            # The problem only: str(exc) would quote the file's line, which may hold a secret.
            self.issue(node, path, f"invalid value: {getattr(exc, 'problem', None) or type(exc).__name__}")
            return None
        if isinstance(value, datetime.date):
            return str(node.value)  # 2024-01-01 is a date to YAML but text to us (a version, say)
        if isinstance(value, str):
            value, problems = expand_vars(value, self.environ)
            for problem in problems:
                self.issue(node, path, problem)
        return value

    def mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        own = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        # `<<: *anchor` first, so the mapping's own keys override merged ones, as YAML says.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.merge(value_node, path, depth, result)
        first_line: dict[str, int] = {}
        for key_node, value_node in own:
            if not isinstance(key_node, yaml.ScalarNode):
                self.issue(key_node, path, "a key must be plain text, not a list or mapping")
                continue
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in first_line:
                self.issue(
                    key_node, (*path, key), f"duplicate key {key!r} (first defined on line {first_line[key]})"
                )
            first_line.setdefault(key, line)
            self.out.lines[(*path, key)] = line
            result[key] = self.walk(value_node, (*path, key), depth + 1)
        return result

    def merge(self, node: yaml.Node, path: KeyPath, depth: int, into: dict[str, Any]) -> None:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        # In `<<: [*a, *b]` the first mapping wins, so apply them last to first.
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.issue(source, path, "<< must merge a mapping or a list of mappings")
                continue
            into.update(self.mapping(source, path, depth + 1))
