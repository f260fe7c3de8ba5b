"""KEY=VALUE files in the .env.local style that Next.js and friends read.

Supported: blank lines, `#` comments, an optional `export ` prefix, single-quoted values (taken
literally), double-quoted values (\\n, \\t, \\" and \\\\ escapes), quoted values spanning several lines,
and ` #` comments after unquoted values. No `$VAR` expansion: values are used as written.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["env_fingerprint", "parse_env_text", "read_env_file"]

_ASSIGN = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)", re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def read_env_file(path: str | Path) -> dict[str, str]:
    """The variables a .env file defines; ValueError naming file and line if it is malformed."""
    # utf-8-sig: Notepad on Windows likes to start files with a byte-order mark.
    text = Path(path).read_text(encoding="utf-8-sig")
    return parse_env_text(text, str(path))


def env_fingerprint(values: Mapping[str, str]) -> dict[str, str]:
    """Variable name -> a digest of its value: tells which variables changed without keeping values.

    Keyed with a per-process random salt, so a digest says nothing about a short secret even if seen.
    """
    return {key: hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=_salt(), digest_size=16).hexdigest()
            for key, value in values.items()}  # fmt: skip


@functools.cache
def _salt() -> bytes:
    return os.urandom(16)


def parse_env_text(text: str, name: str = "<env>") -> dict[str, str]:
    """Parse the contents of a .env file; `name` is used in error messages."""
    result: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number = index + 1
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGN.fullmatch(stripped)
        if match is None:
            raise ValueError(f"{name}:{number}: expected KEY=VALUE, got {stripped!r}")
        key, raw = match[1], match[2]
        if raw[:1] in ("'", '"'):
            # A quoted value may run on over the following lines until its closing quote.
            while not _closed(raw) and index < len(lines):
                raw += "\n" + lines[index]
                index += 1
            result[key] = _quoted(raw, name, number)
        else:
            result[key] = re.split(r"\s#", raw, maxsplit=1)[0].strip()
    return result


def _closed(raw: str) -> bool:
    return _closing_quote(raw) is not None


def _closing_quote(raw: str) -> int | None:
    """Index of the quote that closes the one at raw[0], skipping backslash escapes in "..."."""
    quote, i = raw[0], 1
    while i < len(raw):
        if quote == '"' and raw[i] == "\\":
            i += 2
            continue
        if raw[i] == quote:
            return i
        i += 1
    return None


def _quoted(raw: str, name: str, number: int) -> str:
    end = _closing_quote(raw)
    if end is None:
        raise ValueError(f"{name}:{number}: unterminated {raw[0]} quote")
    rest = raw[end + 1 :].strip()
    if rest and not rest.startswith("#"):
        raise ValueError(f"{name}:{number}: unexpected text after the closing quote: {rest!r}")
    body = raw[1:end]
    if raw[0] == "'":
        return body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), body, flags=re.DOTALL)
