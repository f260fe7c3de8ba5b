"""What the dashboard shows of ComfyUI: its queue and VRAM from the last sample (never asked live).

The sampler (comfy/model.py) refreshes `ComfyUI.sample` after every health probe; the history and the
live feed read that, so an open dashboard never makes a request to ComfyUI.
"""

from __future__ import annotations

from typing import Any

from orchestrator.comfy.model import ComfyUI
from orchestrator.core.history import ComfyPoint

__all__ = ["comfy_point", "comfy_summary"]


def comfy_point(comfy: ComfyUI) -> ComfyPoint | None:
    """The history's ComfyUI point; None when no service carries `comfy:`."""
    if comfy.runner is None:
        return None
    sample = comfy.sample
    queue = sample.queue if sample.reachable else None
    total = sum(d.vram_total for d in sample.devices) if sample.reachable and sample.devices else None
    used = sum(d.vram_total - d.vram_free for d in sample.devices) if total is not None else None
    return ComfyPoint(queue.running if queue else None, queue.pending if queue else None, used, total)


def comfy_summary(comfy: ComfyUI) -> dict[str, Any] | None:
    """The live status' `comfy` part: {service, queue: {running, pending} | null, vram_*_bytes, error}."""
    runner, point = comfy.runner, comfy_point(comfy)
    if runner is None or point is None:
        return None
    queue = None if point.queue_running is None else {"running": point.queue_running, "pending": point.queue_pending}
    return {"service": runner.name, "queue": queue, "vram_used_bytes": point.vram_used_bytes,
            "vram_total_bytes": point.vram_total_bytes, "error": comfy.sample.error, "draining": comfy.draining}
