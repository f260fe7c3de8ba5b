"""Which program a Windows command runs, and the command line a batch file needs. Pure: tested anywhere.

Program lookup. CreateProcess appends `.exe` to a bare name but knows nothing of PATHEXT, so `npm`
would not find npm.cmd; and it resolves a relative path against *our* working directory, not the
child's. So we resolve argv[0] ourselves, the same way on every OS: a name with a folder part is
relative to the service's cwd; a bare name is looked up in the child's PATH only (not in the current
folder, as on POSIX). A name without an extension is tried with each PATHEXT extension in turn.

Batch files (`.bat`, `.cmd`) run through cmd.exe, which parses their command line with rules of its
own: `& | < > ^ ( )` outside quotes are operators, `%NAME%` is expanded everywhere, quotes or not.
`batch_command_line` quotes as Rust's std does since BatBadBut (CVE-2024-24576): an argument with any
character outside a small safe set is put in quotes, an embedded `"` is doubled, backslashes before
a quote are doubled, and `%` becomes `%%cd:~,%` (an empty substring of the always-defined %cd%, so no
variable name can form). CR, LF and NUL cannot be passed at all and are refused.

The line runs as `cmd.exe /c "<line>"` (asyncio's shell route: the only way it hands CreateProcess a
verbatim command line). The `"` quirk of cmd /c: it keeps the quotes after /c only if there are
exactly two of them around an existing program's name; otherwise it removes the first and the last
quote of the whole line. Our line always starts with the quoted script, so there are at least four,
and cmd removes exactly the outer pair that Python added: the effect of /s. /d (skip AutoRun), /e:ON
and /v:OFF cannot be given on that route; they are cmd's defaults unless the registry changes them.
"""

from __future__ import annotations

import ntpath
import re
from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_PATHEXT", "BatchArgumentError", "batch_command_line", "is_batch", "resolve_program"]

DEFAULT_PATHEXT = ".COM;.EXE;.BAT;.CMD"
_BATCH_SUFFIXES = (".bat", ".cmd")
_SAFE = re.compile(r"[A-Za-z0-9#$*+\-./:?@\\_]+")  # Rust std's set: these never need quotes for cmd
_UNPASSABLE = ("\r", "\n", "\0")


class BatchArgumentError(ValueError):
    """An argument that no quoting can carry through cmd.exe to a batch file."""


def is_batch(program: str) -> bool:
    return ntpath.splitext(program)[1].lower() in _BATCH_SUFFIXES


def resolve_program(
    name: str, *, cwd: str, path: str, pathext: str | None = None, is_file: Callable[[str], bool]
) -> str | None:
    """The file `name` runs, or None. `path`/`pathext` are the child's PATH and PATHEXT values."""
    exts = [e.lower() for e in (pathext or DEFAULT_PATHEXT).split(";") if e.startswith(".")]
    if ntpath.splitdrive(name)[0] or "\\" in name or "/" in name:
        candidates = [name if ntpath.isabs(name) else ntpath.normpath(ntpath.join(cwd, name))]
    else:
        folders = [d.strip().strip('"') for d in path.split(";")]
        candidates = [ntpath.join(d, name) for d in folders if d]
    for candidate in candidates:
        if ntpath.splitext(candidate)[1] and is_file(candidate):
            return candidate
        for ext in exts:
            if is_file(candidate + ext):
                return candidate + ext
    return None


def batch_command_line(script: str, args: Sequence[str]) -> str:
    """`"script" arg...` for cmd.exe to run (see the module docstring). BatchArgumentError if impossible."""
    if '"' in script or any(c in script for c in _UNPASSABLE):
        raise BatchArgumentError(f"a batch file path cannot contain quotes or line breaks: {script!r}")
    parts = ['"' + script.replace("%", "%%cd:~,%") + '"']
    for i, arg in enumerate(args, 1):
        if any(c in arg for c in _UNPASSABLE):
            raise BatchArgumentError(f"argument {i} of {script} contains a line break or NUL, which cmd.exe "
                                     f"cannot pass to a batch file: {arg!r}")
        parts.append(_quote_batch_argument(arg))
    return " ".join(parts)


def _quote_batch_argument(arg: str) -> str:
    # A trailing backslash is quoted too: in the script, "%~1" would otherwise end in \" .
    if arg and _SAFE.fullmatch(arg) and not arg.endswith("\\"):
        return arg
    out = ['"']
    backslashes = 0
    for c in arg:
        if c == "\\":
            backslashes += 1
            out.append(c)
            continue
        if c == '"':
            out.append("\\" * backslashes + '"')  # 2n backslashes, then "" : one literal quote
        out.append("%%cd:~,%" if c == "%" else c)
        backslashes = 0
    out.append("\\" * backslashes + '"')
    return "".join(out)
