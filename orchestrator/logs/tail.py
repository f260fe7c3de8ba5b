"""The last lines of a log and its rotated predecessors, read backwards in blocks, within a byte budget.

Only the tail is read: n=100 from a 10 MB file costs a block or two, not 10 MB of memory. And never
more than `tail_budget(n)` bytes in all (1 MiB plus 1 KiB a requested line, at most 16 MiB), whatever
the files hold: a child that printed 200 MB without a newline once made `lines=1` return all 200 MB
(the supervisor's RSS peaked at 644 MB and /api/health took 3.2 s). When the budget ends inside a
line, that line is returned from where the reading stopped, prefixed with CUT_MARKER.

The reading is blocking file I/O: callers on the event loop run `read_tail` in a worker thread
(anyio.to_thread). `open_tail` is the cheap synchronous part (open the files, note their sizes), so a
follower can take its snapshot and subscribe to new output in one step on the loop, and read later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from orchestrator.logs.files import open_read

__all__ = [
    "CUT_MARKER",
    "MAX_TAIL_BYTES",
    "TailFiles",
    "open_tail",
    "read_tail",
    "tail_budget",
    "tail_lines",
]

_BLOCK = 64 * 1024
BASE_TAIL_BYTES = 1 << 20  # read back this much whatever n is ...
PER_LINE_BYTES = 1 << 10  # ... plus this much a requested line ...
MAX_TAIL_BYTES = 16 << 20  # ... but never more than this in all
CUT_MARKER = b"[cut] "  # starts a line whose beginning was not read (the budget ended inside it)


def tail_budget(n: int) -> int:
    """How many bytes a tail of `n` lines may read back, across all the files."""
    return min(MAX_TAIL_BYTES, BASE_TAIL_BYTES + max(0, n) * PER_LINE_BYTES)


@dataclass
class TailFiles:
    """Open files, newest first, each with the size it had when opened: what `read_tail` reads."""

    files: list[tuple[BinaryIO, int]]

    def close(self) -> None:
        for f, _ in self.files:
            f.close()
        self.files = []


def open_tail(paths_newest_first: list[Path], budget: int) -> TailFiles:
    """Opens the files a tail within `budget` bytes may need (no more: their sizes add up to it).

    Missing or unreadable files are skipped (a rotation may move them meanwhile); symbolic links are
    refused (files.open_read). The sizes are taken now: what is appended later is not read.
    """
    opened: list[tuple[BinaryIO, int]] = []
    total = 0
    for path in paths_newest_first:
        if total >= budget:
            break
        try:
            f = open_read(path)
        except OSError:
            continue
        try:
            size = os.fstat(f.fileno()).st_size
        except OSError:
            f.close()
            continue
        opened.append((f, size))
        total += size
    return TailFiles(opened)


def read_tail(files: TailFiles, n: int, budget: int, *, block_size: int = _BLOCK) -> list[bytes]:
    """The last `n` lines across the open files, oldest first, reading at most `budget` bytes.

    Lines are returned without their line ending (\\n or \\r\\n); a final line without a newline counts.
    Closes the files.
    """
    try:
        chunks: list[list[bytes]] = []  # per file, newest file first
        need, at_file_start, older = n, False, None
        for i, (f, size) in enumerate(files.files):
            if need <= 0 or budget <= 0:
                break
            try:
                lines, used, cut = _tail_stream(f, need, block_size, budget=budget, end=size)
            except OSError:
                continue
            chunks.append(lines)
            need -= len(lines)
            budget -= used
            at_file_start = bool(lines) and not cut and used >= size  # its first line starts the file
            older = files.files[i + 1] if i + 1 < len(files.files) else None
            if cut:
                break  # the line goes on in an older file we may not read
        oldest = next((lines for lines in reversed(chunks) if lines), None)
        if oldest is not None and at_file_start and need <= 0 and older is not None and _ends_inside_line(*older):
            oldest[0] = CUT_MARKER + oldest[0]  # it began in the older file (a line cut at max_size)
        return [line for lines in reversed(chunks) for line in lines]
    finally:
        files.close()


def _ends_inside_line(f: BinaryIO, size: int) -> bool:
    try:
        f.seek(size - 1)
        return size > 0 and f.read(1) != b"\n"
    except OSError:
        return False


def tail_lines(paths_newest_first: list[Path], n: int, *, block_size: int = _BLOCK,
               budget: int | None = None) -> list[bytes]:
    """`read_tail` of the files at `paths_newest_first` (current first, then `.1`, `.2`, ...)."""
    if n <= 0:
        return []
    budget = tail_budget(n) if budget is None else budget
    return read_tail(open_tail(paths_newest_first, budget), n, budget, block_size=block_size)


def _tail_stream(
    f: BinaryIO, n: int, block_size: int, *, budget: int = MAX_TAIL_BYTES, end: int | None = None
) -> tuple[list[bytes], int, bool]:
    """The last `n` lines of one open file up to `end`, reading blocks backwards, at most `budget`
    bytes: (lines, bytes read, whether the first line is cut because the budget ended inside it)."""
    end = f.seek(0, os.SEEK_END) if end is None else end
    if end == 0 or n <= 0:
        return [], 0, False
    f.seek(end - 1)
    ends_with_newline = f.read(1) == b"\n"
    # n lines are certainly complete once n newlines are seen before the file's final one.
    wanted = n + 1 if ends_with_newline else n
    blocks: list[bytes] = []
    pos, newlines, used = end, 0, 1
    while pos > 0 and newlines < wanted and used < budget:
        start = max(0, pos - block_size, pos - (budget - used))
        f.seek(start)
        block = f.read(pos - start)
        if not block:
            break  # truncated meanwhile (copy-truncate)
        blocks.append(block)
        used += len(block)
        newlines += block.count(b"\n")
        pos = start
    data = b"".join(reversed(blocks))
    lines = data.split(b"\n")
    if ends_with_newline:
        lines.pop()  # the empty piece after the final newline
    cut = False
    if pos > 0:
        if len(lines) > n or newlines >= wanted:
            lines.pop(0)  # cut mid-line by the block boundary (or a whole line we don't need)
        else:
            cut = True  # the budget ended inside the oldest line we want: keep its end, marked
            lines[0] = CUT_MARKER + lines[0]
    lines = lines[-n:]
    if cut and not lines[0].startswith(CUT_MARKER):
        cut = False
    return [line.removesuffix(b"\r") for line in lines], used, cut
