"""Log file naming on disk: `NAME-stdout.log`, then `.1` (newest backup), `.2`, ...; opening and rotating."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "Fallback",
    "Remove",
    "Rename",
    "copy_truncate",
    "log_path",
    "numbered_backups",
    "open_append",
    "remove_file",
    "rotated_paths",
    "shift_backups",
]

Rename = Callable[[Path, Path], None]
Remove = Callable[[Path], None]
Fallback = Callable[[Path, Path], None]  # stands in for the rename of the current file when that is refused


def log_path(logs_dir: Path, service: str, stream: str) -> Path:
    """Where a service's stream ("stdout" or "stderr") is logged."""
    return logs_dir / f"{service}-{stream}.log"


def open_append(path: Path) -> BinaryIO:
    # Unbuffered: each sink write is one write(2) of a whole pipe read, so the file is always current
    # for `tail` and the API, and there is no buffer to flush. O_APPEND comes with mode "a".
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab", buffering=0)  # the sink owns the handle


def remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def numbered_backups(path: Path) -> list[tuple[int, Path]]:
    """The existing `path.N` files as (N, path), sorted by N: newest first."""
    prefix = path.name + "."
    found: list[tuple[int, Path]] = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        suffix = entry.name[len(prefix) :]
        if entry.name.startswith(prefix) and suffix.isdigit() and suffix.isascii():
            found.append((int(suffix), entry))
    return sorted(found)


def copy_truncate(path: Path, dst: Path) -> None:
    """Copies `path` to `dst`, then empties `path` in place: a rotation that needs no rename.

    Windows refuses to rename a file that another program holds open without FILE_SHARE_DELETE
    (WinError 32): PowerShell's `Get-Content -Wait`, a log shipper. Retrying later would not help for as
    long as such a reader stays, and the file would grow without bound. Readers see a truncation. If
    the truncation fails, the copy is removed again, so no line ends up in two files.
    """
    shutil.copyfile(path, dst)
    try:
        with open(path, "r+b") as f:
            f.truncate(0)
    except OSError:
        dst.unlink(missing_ok=True)
        raise


def shift_backups(
    path: Path, backups: int, *, rename: Rename = os.replace, remove: Remove = remove_file,
    fallback: Fallback | None = None,
) -> None:
    """Rotates `path` away: to `path.1`, older backups moving up by one; backups 0 removes it.

    Only the slots up to the first missing one are moved, so a rotation that failed half-way (the
    current file held open by another program: WinError 32) can be retried without losing a backup.
    If renaming the current file itself is refused (PermissionError), `fallback` (copy_truncate) does
    that last step instead. Raises OSError at the first step that fails; nothing after it is touched.
    """
    if not path.exists():
        return
    if backups <= 0:
        remove(path)
        return
    gap = 1  # found by probing upwards: cost follows the backups that exist, not the `backups` limit
    while gap <= backups and _numbered(path, gap).exists():
        gap += 1
    if gap > backups:
        gap = backups
        remove(_numbered(path, gap))
    for i in range(gap, 1, -1):
        rename(_numbered(path, i - 1), _numbered(path, i))
    try:
        rename(path, _numbered(path, 1))
    except PermissionError:
        if fallback is None:
            raise
        fallback(path, _numbered(path, 1))


def _numbered(path: Path, i: int) -> Path:
    return path.with_name(f"{path.name}.{i}")


def rotated_paths(path: Path) -> list[Path]:
    """[path, path.1, path.2, ...] for those that exist, newest first."""
    current = [path] if path.exists() else []
    return current + [p for _, p in numbered_backups(path)]
