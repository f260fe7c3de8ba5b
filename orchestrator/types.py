"""Small shared protocols and aliases, imported by every layer."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ByteSource"]


class ByteSource(Protocol):
    """Where a pump reads a child's output from; b"" means end of stream (asyncio.StreamReader fits)."""

    async def read(self, n: int = -1, /) -> bytes: ...
