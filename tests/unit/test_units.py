from __future__ import annotations

import pytest

from orchestrator.config.units import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("15s", 15.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (" 2 m ", 120.0),
        ("10", 10.0),
        ("0", 0.0),
        ("15S", 15.0),
        (30, 30.0),
        (0.25, 0.25),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "15x", "s", "", "1 5s", True, None, [1], "nan", float("inf")])
def test_bad_durations_say_what_was_expected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected a duration like 15s"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["-5s", -1, -0.5, " -1m"])
def test_negative_durations_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KB", 512 * 1024),
        ("10MB", 10485760),
        ("1GB", 1024**3),
        ("10mb", 10485760),
        ("4KiB", 4096),
        ("2MiB", 2 * 1024**2),
        ("1gib", 1024**3),
        ("100B", 100),
        ("1.5KB", 1536),
        ("2048", 2048),
        (4096, 4096),
        (0, 0),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["ten", "10XB", "MB", True, None, 1.5, "0.5B"])
def test_bad_sizes_say_what_was_expected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected a size like 512KB, 10MB or 1GB"):
        parse_size(bad)


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_size("-1MB")


@pytest.mark.parametrize(("text", "seconds"), [("2m30s", 150.0), ("1h30m", 5400.0), ("1h0m5s", 3605.0),
                                               ("1m500ms", 60.5), ("1H30M", 5400.0)])
def test_compound_durations_as_go_and_systemd_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["30s2m", "1m1m", "2m30", "2m 30s x"])
def test_compound_durations_out_of_order_or_half_written_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"expected a duration like 15s"):
        parse_duration(bad)
