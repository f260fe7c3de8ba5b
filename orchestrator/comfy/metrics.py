"""orchestrator_comfy_*: read at scrape time from what the health loop sampled, never fetched by a scrape.

The queue, VRAM and RAM gauges carry the last known values while ComfyUI's child lives (a slow answer
keeps the previous one) and disappear when it is gone; `orchestrator_comfy_reachable` says whether the
last sample got an answer. The proxy counter's `endpoint` label is bounded (comfy_proxy.endpoint_label).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.comfy.client import ComfyDevice
from orchestrator.comfy.model import ComfyUI

__all__ = ["ComfyCollector", "device_label"]


def device_label(device: ComfyDevice) -> str:
    """`cuda:0`: short and stable (ComfyUI's name also carries the model and the allocator)."""
    return f"{device.type}:{device.index}" if device.type and device.index is not None else device.name


class ComfyCollector(Collector):
    def __init__(self, comfy: ComfyUI) -> None:
        self._comfy = comfy

    def collect(self) -> Iterator[Metric]:
        comfy = self._comfy
        calls = CounterMetricFamily("orchestrator_comfy_api_calls", "Requests proxied to ComfyUI, by endpoint and "
                                    "the status answered", labels=["endpoint", "status"])
        for (endpoint, status), count in sorted(comfy.proxy_calls.items()):
            calls.add_metric([endpoint, status], count)
        yield calls
        if comfy.runner is None:
            return  # no service carries comfy:
        sample = comfy.sample
        yield GaugeMetricFamily("orchestrator_comfy_reachable", "1 if ComfyUI answered its last sample, else 0",
                                value=1.0 if sample.reachable else 0.0)
        if sample.queue is not None:
            yield GaugeMetricFamily("orchestrator_comfy_queue_running", "Prompts ComfyUI is executing",
                                    value=sample.queue.running)
            yield GaugeMetricFamily("orchestrator_comfy_queue_pending", "Prompts waiting in ComfyUI's queue",
                                    value=sample.queue.pending)
        if sample.devices:
            total = GaugeMetricFamily("orchestrator_comfy_vram_total_bytes", "VRAM of the device",
                                      labels=["device"])
            free = GaugeMetricFamily("orchestrator_comfy_vram_free_bytes", "Free VRAM of the device",
                                     labels=["device"])
            for device in sample.devices:
                total.add_metric([device_label(device)], device.vram_total)
                free.add_metric([device_label(device)], device.vram_free)
            yield total
            yield free
        if sample.ram_free is not None:
            yield GaugeMetricFamily("orchestrator_comfy_ram_free_bytes", "Free system RAM as ComfyUI reports it",
                                    value=sample.ram_free)
