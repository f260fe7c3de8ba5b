"""The supervisor's own log: JSON lines into a rotating file, readable key=value lines on the console."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import structlog

__all__ = ["configure_logging"]

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=False),
]


def configure_logging(
    log_file: Path | None, *, max_bytes: int = 10 * 1024 * 1024, backups: int = 5,
    console: bool = True, level: int = logging.INFO,
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
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        root.addHandler(_handler(logging.StreamHandler(sys.stderr), renderer))
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
            )
        except OSError as exc:  # an unwritable log dir must not stop the supervisor
            logging.getLogger("orchestrator").warning("cannot open %s: %s", log_file, exc)
        else:
            json_renderer = structlog.processors.JSONRenderer()
            root.addHandler(_handler(file_handler, json_renderer, tracebacks=True))
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
