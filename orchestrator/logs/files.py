"""Log file naming on disk: `NAME-stdout.log`, then `.1` (newest backup), `.2`, ...; opening and rotating.

Symbolic links are never followed: a log file replaced by a link made the supervisor append child
output to the link's target, copy-truncate emptied the target, and a planted `NAME-stderr.log.9` link
was served by /api/logs. Files are opened with O_NOFOLLOW (POSIX; an open of a link fails with ELOOP),
a rotation that meets a link refuses (LinkRefused, naming the path), and readers get only the
configured files (`configured_paths`: the current one and `.1` ... `.backups`, regular files only).
New log files are created 0640 (children print secrets; the world should not read them).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "LOG_FILE_MODE",
    "Fallback",
    "LinkRefused",
    "Remove",
    "Rename",
    "configured_paths",
    "copy_truncate",
    "log_path",
    "numbered_backups",
    "open_append",
    "open_read",
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


LOG_FILE_MODE = 0o640  # before the umask; on Windows the mode only sets read-only or not
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX only: Windows has no such flag (nor user symlinks)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows only: no newline translation


class LinkRefused(OSError):
    """A log path is a symbolic link: not written, rotated or read through."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.ELOOP, "a symbolic link: refused (log files are never followed)", str(path))

    def __str__(self) -> str:
        return f"{self.filename} is {self.strerror}"


def open_append(path: Path) -> BinaryIO:
    # Unbuffered: each sink write is one write(2) of a whole pipe read, so the file is always current
    # for `tail` and the API, and there is no buffer to flush.
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _BINARY
    try:
        fd = os.open(path, flags, LOG_FILE_MODE)
    except OSError as exc:
        if path.is_symlink():
            raise LinkRefused(path) from exc
        raise
    return os.fdopen(fd, "ab", buffering=0)  # the sink owns the handle


def open_read(path: Path) -> BinaryIO:
    """Opens a log file for reading, never through a symbolic link (LinkRefused)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
    except OSError as exc:
        if path.is_symlink():
            raise LinkRefused(path) from exc
        raise
    return os.fdopen(fd, "rb")


def configured_paths(path: Path, backups: int) -> list[Path]:
    """[path, path.1, ... path.backups] for those that exist as regular files (no links), newest first.

    Probes upwards and stops at the first gap, as rotation leaves no gap: cost follows what exists.
    """
    found: list[Path] = []
    for i in range(max(backups, 0) + 1):
        candidate = _numbered(path, i) if i else path
        try:
            st = candidate.lstat()
        except OSError:
            if i == 0:
                continue  # no current file (yet, or moved away): the backups may still be there
            break
        if stat.S_ISREG(st.st_mode):
            found.append(candidate)
    return found


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
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _BINARY, LOG_FILE_MODE)
    with open_read(path) as src, os.fdopen(out_fd, "wb") as out:
        shutil.copyfileobj(src, out)
    try:
        fd = os.open(path, os.O_WRONLY | _NOFOLLOW | _BINARY)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)
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
    if not os.path.lexists(path):
        return
    _refuse_link(path)
    if backups <= 0:
        remove(path)
        return
    gap = 1  # found by probing upwards: cost follows the backups that exist, not the `backups` limit
    while gap <= backups and os.path.lexists(_numbered(path, gap)):
        _refuse_link(_numbered(path, gap))
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


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise LinkRefused(path)


def _numbered(path: Path, i: int) -> Path:
    return path.with_name(f"{path.name}.{i}")


def rotated_paths(path: Path) -> list[Path]:
    """[path, path.1, path.2, ...] for those that exist, newest first."""
    current = [path] if path.exists() else []
    return current + [p for _, p in numbered_backups(path)]
