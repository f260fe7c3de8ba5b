"""The supervisor's own log: JSON lines into a rotating file (for machines, always), and on the console
either short lines for a person (console.py) or the same JSON lines (`--log-format json`, for a pipe).

orchestrator.log is written through a LogSink, like the children's logs, not logging's
RotatingFileHandler: the same rotation, 0640 creation, no symbolic links followed, and a file or
directory deleted while running is recreated (`log_reopened`). A write that fails is a counted drop
and one report per episode; RotatingFileHandler printed a "--- Logging error ---" traceback to the
console for every record instead (555 lines in 12 s with the directory gone read-only).

`check_log_dir` is the start-time precondition: a log directory that cannot be created or written
stops the start with one line naming it, before any child is spawned.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import structlog

from orchestrator.config.spec import LogSpec
from orchestrator.errors import OrchestratorError
from orchestrator.logs.console import ConsoleLines
from orchestrator.logs.files import open_append
from orchestrator.logs.sink import ErrorCallback, LogSink
from orchestrator.platform.console import ansi_console

__all__ = ["LogSetupError", "SinkHandler", "check_log_dir", "configure_logging", "supervisor_log_sink"]


class LogSetupError(OrchestratorError):
    """The log directory cannot be used: the supervisor does not start."""


def check_log_dir(logs_dir: Path, key: str = "logs.dir") -> None:
    """Raises LogSetupError, naming the directory and its config key, unless a file can be created
    and written in it (created if missing)."""
    probe = logs_dir / f".orchestrator-write-test-{os.getpid()}"
    try:
        with open_append(probe) as f:
            f.write(b"ok\n")
        probe.unlink()
    except OSError as exc:
        raise LogSetupError(
            f"cannot write to the log directory {logs_dir} ({key}): {exc.strerror or exc}"
        ) from exc


class SinkHandler(logging.Handler):
    """A logging handler that writes each formatted record to a LogSink, which never raises."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be rendered must not cost a traceback on the console
            text = f"unrenderable log record from {record.name}: {record.msg!r}"
        self.sink.write(text.encode("utf-8", errors="replace") + b"\n")

    def close(self) -> None:
        self.sink.close()
        super().close()


def supervisor_log_sink() -> LogSink | None:
    """The sink behind orchestrator.log, if configure_logging set one up (app.run plugs events into it)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, SinkHandler):
            return handler.sink
    return None

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=False),
]


def configure_logging(
    log_file: Path | None, *, max_bytes: int = 10 * 1024 * 1024, backups: int = 5,
    console: bool = True, level: int = logging.INFO, on_error: ErrorCallback | None = None,
    console_format: str = "console", name_width: int = 8,
) -> None:
    """Route structlog and stdlib (uvicorn, httpx) records through the same renderers."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    if console:
        handler = logging.StreamHandler(sys.stderr)
        if console_format == "json":
            root.addHandler(_handler(handler, structlog.processors.JSONRenderer(), tracebacks=True))
        else:
            lines = ConsoleLines(width=name_width, colors=ansi_console(sys.stderr))
            handler.addFilter(lines)
            root.addHandler(_handler(handler, lines))
    if log_file is not None:
        spec = LogSpec(dir=log_file.parent, max_size=max_bytes, backups=backups)
        sink = LogSink(log_file, spec, on_error=on_error)  # opened at the first record
        json_renderer = structlog.processors.JSONRenderer()
        root.addHandler(_handler(SinkHandler(sink), json_renderer, tracebacks=True))
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _handler(
    handler: logging.Handler, renderer: structlog.types.Processor, *, tracebacks: bool = False
) -> logging.Handler:
    chain: list[structlog.types.Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if tracebacks:
        chain.append(structlog.processors.dict_tracebacks)
    chain.append(renderer)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_SHARED, processors=chain))
    return handler
