"""What differs between Windows and POSIX: kept in one package so the rest of the code does not branch."""

from __future__ import annotations

__all__: list[str] = []
