"""orchestrator: one asyncio process that owns its children, their logs and their health."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
