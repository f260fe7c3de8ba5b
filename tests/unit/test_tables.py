"""The CLI's text rendering: durations, sizes, the status table, system checks."""

from __future__ import annotations

from orchestrator.cli.tables import human_bytes, human_duration, service_line, status_table, system_lines


def test_durations_and_sizes_read_like_a_human_wrote_them() -> None:
    assert [human_duration(s) for s in (None, 0, 59.9, 61, 3600 * 2 + 65, 86400 * 3 + 3600 * 5)] == [
        "-", "0s", "59s", "1m01s", "2h01m", "3d5h"]
    assert [human_bytes(n) for n in (None, 0, 1023, 1536, 8 * 1024**3, 3 * 1024**4)] == [
        "-", "0 B", "1023 B", "1.5 KiB", "8.0 GiB", "3072.0 GiB"]


def test_status_table_aligns_columns_and_hides_figures_not_sampled_yet() -> None:
    services = [
        {"name": "comfyui", "state": "running", "health": "healthy", "pid": 4242, "uptime_s": 7300,
         "restarts": 1, "cpu_percent": 12.34, "rss_bytes": 8 * 1024**3, "processes": 3, "reason": "running"},
        {"name": "panel", "state": "fatal", "health": "unknown", "pid": None, "uptime_s": None, "restarts": 3,
         "cpu_percent": 0.0, "rss_bytes": 0, "processes": 0, "reason": "exited with code 1; gave up"},
        {"name": "new", "state": "starting", "health": "unknown", "pid": 7, "uptime_s": 0.1, "restarts": 0,
         "cpu_percent": 0.0, "rss_bytes": 0, "processes": 0, "reason": "started"},
    ]
    lines = status_table(services).splitlines()
    assert lines[0].split() == ["NAME", "STATE", "HEALTH", "PID", "UPTIME", "RESTARTS", "CPU", "MEM", "REASON"]
    assert lines[1].split() == ["comfyui", "running", "healthy", "4242", "2h01m", "1", "12.3%", "8.0", "GiB",
                                "running"]
    assert lines[2].split()[:8] == ["panel", "fatal", "unknown", "-", "-", "3", "-", "-"]
    assert lines[3].split()[6:8] == ["-", "-"]
    assert all(line[9:].startswith(("STATE", "running", "fatal", "starting")) for line in lines)


def test_service_line_and_system_lines() -> None:
    assert service_line({"name": "web", "state": "running", "pid": 12, "reason": "running"}) == "web: running (pid 12)"
    assert service_line({"name": "web", "state": "stopped", "pid": None, "reason": "stopped by hand"}) == (
        "web: stopped: stopped by hand")
    system = {"disk": [{"path": "F:\\", "free_bytes": 20 * 1024**3, "min_free_bytes": 10 * 1024**3, "state": "ok"},
                       {"path": "X:\\", "free_bytes": None, "error": "no such drive", "state": "error"}],
              "memory": {"used_percent": 85.2, "max_percent": 80, "state": "warning"}}
    assert system_lines(system) == [
        "disk F:\\: 20.0 GiB free (min 10.0 GiB)  [ok]",
        "disk X:\\: no such drive  [error]",
        "memory: 85% used (max 80%)  [warning]",
    ]
    assert system_lines({"disk": [], "memory": None}) == []


def test_events_say_each_change_once_and_colour_only_when_asked() -> None:
    from orchestrator.cli.tables import event_lines

    def ev(i: int, kind: str, message: str, **kw: object) -> dict[str, object]:
        return {"id": i, "at": 0, "service": "web", "kind": kind, "message": message, **kw}

    events = [ev(1, "state_changed", "restarted by hand", from_state="running", to_state="stopping"),
              ev(2, "state_changed", "restarted by hand", from_state="stopping", to_state="starting"),
              ev(3, "restart", "restarted by hand", cause="manual"),
              ev(4, "state_changed", "exited with code 1", from_state="starting", to_state="backoff"),
              ev(5, "restart", "exited with code 1 (attempt 1 of 3)", cause="exit"),
              ev(6, "health_changed", "healthy")]
    lines = [line.split("  ", 2)[2] for line in event_lines(events)]
    assert lines == ["web  running \u2192 stopping \u2192 starting: restarted by hand",
                     "web  starting \u2192 backoff: exited with code 1 (attempt 1 of 3)",
                     "web  health_changed: healthy"]
    assert "\033[33mbackoff\033[0m" in event_lines(events, color=True)[1]


def test_a_service_without_a_health_check_shows_a_dash() -> None:
    row = {"name": "w", "state": "running", "health": "none", "pid": 1, "uptime_s": 1, "restarts": 0,
           "processes": 1, "cpu_percent": 0.0, "rss_bytes": 1, "reason": "running"}
    assert status_table([row]).splitlines()[1].split()[2] == "-"
