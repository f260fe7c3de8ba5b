"""The config helpers that need no YAML: ${VAR} expansion and path resolution.

Here, not in document.py and read.py (which re-export them), because `orchestrator status` needs
them to read a config's `state_dir` and `api` (locate.py) and must not pay for what those modules
import: PyYAML (+22 ms of CPU per call, best of 21 interleaved runs on the 2-core dev box), difflib,
the spec's enums.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath

from orchestrator.config.redact import Expanded

__all__ = ["expand_vars", "is_absolute_anywhere", "resolve_path"]

_VAR = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{))")
_VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def expand_vars(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ${VAR}, ${VAR:-default} and $$; returns the text and one message per problem.

    Text that took anything from a ${...} comes back as an `Expanded` (it remembers the text as
    written), so no message quotes it. Problems never quote the value either: a reference is named
    by its variable when one can be read, else by its column in the value.
    """
    problems: list[str] = []
    names: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match[1]:
            return "$"
        if match[3]:
            problems.append(f"unterminated ${{ at character {match.start() + 1} of the value"
                            " (write $$ for a literal dollar)")
            return match[0]
        body = _VAR_BODY.fullmatch(match[2])
        if body is None:
            problems.append(f"bad variable reference at character {match.start() + 1} of the value:"
                            " expected ${NAME} or ${NAME:-default}")
            return match[0]
        names.append(body[1])
        value = environ.get(body[1])
        if value is None or (value == "" and body[2] is not None):
            if body[2] is None:
                problems.append(f"environment variable {body[1]} is not set (use ${{{body[1]}:-default}})")
                return ""
            return body[2]
        return value

    expanded = _VAR.sub(substitute, text)
    return (Expanded(expanded, text, names) if names else expanded), problems


def is_absolute_anywhere(path: str) -> bool:
    """Absolute on POSIX or on Windows (F:\\Logs, F:/Logs, \\\\server\\share), whatever OS we run on."""
    return PurePosixPath(path).is_absolute() or bool(PureWindowsPath(path).drive) or path.startswith("\\")


def resolve_path(path: str, base: Path) -> str:
    """Relative paths join the config's folder; absolute ones (either OS's) stay exactly as written."""
    return path if is_absolute_anywhere(path) else str(base / path)
