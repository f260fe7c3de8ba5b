"""KEY=VALUE files in the .env.local style that Next.js and friends read.

Supported: blank lines, `#` comments, an optional `export ` prefix, single-quoted values (taken
literally), double-quoted values (\\n, \\t, \\" and \\\\ escapes), quoted values spanning several lines,
and ` #` comments after unquoted values. No `$VAR` expansion: values are used as written.

Errors never quote the file's text (a malformed line is most likely a secret written the wrong
way): they give file, line and column, the key if one could be read, and the shape of what was found,
like `.env:2: expected KEY=VALUE (got a line with ':' and no '='), key SECRET_TOKEN`.
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
_KEY_COLON = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*:")
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
            raise ValueError(_malformed(name, number, lines[number - 1]))
        key, raw = match[1], match[2]
        if raw[:1] in ("'", '"'):
            # A quoted value may run on over the following lines until its closing quote.
            column = len(lines[number - 1]) - len(lines[number - 1].lstrip()) + match.start(2) + 1
            while not _closed(raw) and index < len(lines):
                raw += "\n" + lines[index]
                index += 1
            result[key] = _quoted(raw, f"{name}:{number}", column, key)
        else:
            result[key] = re.split(r"\s#", raw, maxsplit=1)[0].strip()
    return result


def _malformed(name: str, number: int, line: str) -> str:
    stripped = line.strip()
    key = _KEY_COLON.match(stripped)
    if key is None:
        return f"{name}:{number}: expected KEY=VALUE ({_shape(stripped)})"
    column = len(line) - len(line.lstrip()) + key.end()  # the ':' where '=' was expected
    return f"{name}:{number}:{column}: expected KEY=VALUE ({_shape(stripped)}), key {key[1]}"


def _shape(line: str) -> str:
    """What the malformed line looks like, in words that quote none of it."""
    if "=" in line:
        return "got a line whose text before '=' is not a variable name"
    if ":" in line:
        return "got a line with ':' and no '='"
    if len(line.split()) > 1:
        return "got a line of several words and no '='"
    return "got a line with no '='"


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


def _quoted(raw: str, where: str, column: int, key: str) -> str:
    end = _closing_quote(raw)
    if end is None:
        raise ValueError(f"{where}:{column}: unterminated {raw[0]} quote (opened here), key {key}")
    after = raw[end + 1 :]
    rest = after.strip()
    if rest and not rest.startswith("#"):
        # The column of the stray text, counted on the line where the closing quote is.
        closing_line = raw[: end + 1].rsplit("\n", 1)
        offset = len(closing_line[-1]) + (column - 1 if len(closing_line) == 1 else 0)
        stray = offset + len(after) - len(after.lstrip()) + 1
        line_no = int(where.rsplit(":", 1)[1]) + raw[: end + 1].count("\n")
        raise ValueError(
            f"{where.rsplit(':', 1)[0]}:{line_no}:{stray}: unexpected text after the closing quote"
            f" (expected nothing or a # comment), key {key}"
        )
    body = raw[1:end]
    if raw[0] == "'":
        return body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), body, flags=re.DOTALL)
