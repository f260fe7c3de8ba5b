"""The history ring: bounded per series, columns for the API, removed services forgotten, listeners told."""

from __future__ import annotations

import itertools

import anyio
import pytest

from orchestrator.core.history import EVERY_S, SPAN_S, ComfyPoint, History, Sample, run_sampler


def test_each_series_keeps_span_over_every_plus_one_points() -> None:
    history = History(span_s=60, every_s=20)
    assert history.maxlen == 4
    for i in range(10):
        history.record(Sample(t=float(i), services={"a": (float(i), i * 10)}))
    body = history.to_dict()
    assert body["span_s"] == 60 and body["every_s"] == 20 and body["comfy"] is None
    assert body["services"]["a"] == {"t": [6.0, 7.0, 8.0, 9.0], "cpu_percent": [6.0, 7.0, 8.0, 9.0],
                                     "rss_bytes": [60, 70, 80, 90]}


def test_default_window_is_thirty_minutes_of_twenty_second_points() -> None:
    assert (SPAN_S, EVERY_S, History().maxlen) == (1800.0, 20.0, 91)


def test_a_service_gone_from_the_sample_loses_its_series_and_a_new_one_starts_empty() -> None:
    history = History(span_s=60, every_s=20)
    history.record(Sample(t=1.0, services={"a": (1.0, 1), "b": (2.0, 2)}))
    history.record(Sample(t=2.0, services={"b": (3.0, 3), "c": (4.0, 4)}))
    services = history.to_dict()["services"]
    assert list(services) == ["b", "c"]
    assert services["b"]["t"] == [1.0, 2.0] and services["c"]["t"] == [2.0]
    assert history.points("a") == 0 and history.points("b") == 2


def test_comfy_points_are_columns_and_listeners_get_each_sample_until_removed() -> None:
    history = History(span_s=60, every_s=20)
    got: list[Sample] = []
    history.add_listener(got.append)
    first = Sample(t=1.0, services={}, comfy=ComfyPoint(1, 2, 3, 10))
    history.record(first)
    history.remove_listener(got.append)
    history.record(Sample(t=2.0, services={}, comfy=ComfyPoint(None, None, None, None)))
    assert got == [first]
    assert history.to_dict()["comfy"] == {"t": [1.0, 2.0], "queue_running": [1, None], "queue_pending": [2, None],
                                          "vram_used_bytes": [3, None], "vram_total_bytes": [10, None]}
    assert first.to_dict()["comfy"] == {"queue_running": 1, "queue_pending": 2, "vram_used_bytes": 3,
                                        "vram_total_bytes": 10}


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        History(span_s=0)
    with pytest.raises(ValueError, match="positive"):
        History(every_s=-1)


@pytest.mark.anyio
async def test_the_sampler_takes_a_point_per_interval_the_first_after_one() -> None:
    history = History(span_s=10, every_s=0.05)
    taken: list[float] = []

    async def take() -> Sample:
        taken.append(anyio.current_time())
        return Sample(t=float(len(taken)), services={"a": (0.0, 0)})

    started = anyio.current_time()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_sampler, history, take)
            while history.points("a") < 5:
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise([started, *taken])]
    assert all(0.03 < g < 0.5 for g in gaps), gaps  # on schedule, neither bunched nor stalled
