"""Splitting a command string into argv the way the target OS would.

Windows has no shell-level splitting: each program splits its own command line, and nearly all of them
(and CommandLineToArgvW) follow the rules below. They are implemented here, not borrowed from
shlex, so a config written for the Windows box is read the same way when it is checked on Linux.
"""

from __future__ import annotations

import shlex
import sys

__all__ = ["split_command", "split_windows"]

_BLANKS = " \t"


def split_command(command: str, *, windows: bool | None = None) -> list[str]:
    """argv for `command` with the rules of this OS (or Windows when `windows` is true).

    ValueError on POSIX for an unbalanced quote; Windows rules accept any string.
    """
    if windows is None:
        windows = sys.platform == "win32"
    return split_windows(command) if windows else shlex.split(command, posix=True)


def split_windows(command: str) -> list[str]:
    """argv as CommandLineToArgvW builds it.

    The program name (first word) is special: it ends at the next quote if it starts with one, else
    at the first blank, and backslashes in it are literal. For the other words: 2n backslashes and a
    quote give n backslashes and toggle quoting; 2n+1 backslashes and a quote give n backslashes and a
    literal quote; other backslashes are literal; inside quotes, "" is a literal quote that also ends
    the quoted part. Leading blanks are ignored (the real function would make an empty argv[0]).
    """
    command = command.lstrip(_BLANKS)
    if not command:
        return []
    if command[0] == '"':
        end = command.find('"', 1)
        end = len(command) if end < 0 else end
        argv, i = [command[1:end]], end + 1
    else:
        end = next((j for j, c in enumerate(command) if c in _BLANKS), len(command))
        argv, i = [command[:end]], end
    argv.extend(_split_arguments(command[i:]))
    return argv


def _split_arguments(text: str) -> list[str]:
    args: list[str] = []
    current: list[str] | None = None  # None between words; [] is a word that is (so far) empty
    quotes = 0  # odd: inside quotes; counts like Wine's qcount to get runs of quotes right
    i = 0
    while i < len(text):
        c = text[i]
        if c in _BLANKS and quotes % 2 == 0:
            if current is not None:
                args.append("".join(current))
            current, quotes = None, 0
            i += 1
            continue
        current = [] if current is None else current
        if c == "\\":
            run = len(text[i:]) - len(text[i:].lstrip("\\"))
            i += run
            if i < len(text) and text[i] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    i += 1
            else:
                current.append("\\" * run)
            continue
        if c == '"':
            i, quotes = _quote_run(text, i, quotes, current)
            continue
        current.append(c)
        i += 1
    if current is not None:
        args.append("".join(current))
    return args


def _quote_run(text: str, i: int, quotes: int, out: list[str]) -> tuple[int, int]:
    """Consume a run of quotes starting at text[i]; every third quote in a row is a literal one."""
    quotes += 1
    i += 1
    while i < len(text) and text[i] == '"':
        quotes += 1
        if quotes == 3:
            out.append('"')
            quotes = 0
        i += 1
    if quotes == 2:
        quotes = 0
    return i, quotes
