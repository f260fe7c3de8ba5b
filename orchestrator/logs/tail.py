"""The last lines of a log and its rotated predecessors, read backwards in blocks.

Only the tail is read: n=100 from a 10 MB file costs a block or two, not 10 MB of memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["tail_lines"]

_BLOCK = 64 * 1024


def tail_lines(paths_newest_first: list[Path], n: int, *, block_size: int = _BLOCK) -> list[bytes]:
    """The last `n` lines across the files (current first, then `.1`, `.2`, ...), oldest first.

    Lines are returned without their line ending (\\n or \\r\\n); a final line without a newline counts.
    Missing or unreadable files are skipped (a rotation may move them while we read).
    """
    if n <= 0:
        return []
    chunks: list[list[bytes]] = []  # per file, newest file first
    need = n
    for path in paths_newest_first:
        try:
            with path.open("rb") as f:
                lines = _tail_stream(f, need, block_size)
        except OSError:
            continue
        chunks.append(lines)
        need -= len(lines)
        if need <= 0:
            break
    return [line for lines in reversed(chunks) for line in lines]


def _tail_stream(f: BinaryIO, n: int, block_size: int) -> list[bytes]:
    """The last `n` lines of one open file, reading blocks backwards from its end."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return []
    f.seek(end - 1)
    ends_with_newline = f.read(1) == b"\n"
    # n lines are certainly complete once n newlines are seen before the file's final one.
    wanted = n + 1 if ends_with_newline else n
    blocks: list[bytes] = []
    pos, newlines = end, 0
    while pos > 0 and newlines < wanted:
        start = max(0, pos - block_size)
        f.seek(start)
        block = f.read(pos - start)
        blocks.append(block)
        newlines += block.count(b"\n")
        pos = start
    data = b"".join(reversed(blocks))
    lines = data.split(b"\n")
    if ends_with_newline:
        lines.pop()  # the empty piece after the final newline
    if pos > 0:
        lines.pop(0)  # cut mid-line by the block boundary (or a whole line we don't need)
    return [line.removesuffix(b"\r") for line in lines[-n:]]
