"""structlog set-up: one event name per thing that happened, key=value fields, on stderr.

Under systemd each line starts with its syslog priority (`<4>` for a warning), which journald
reads, so `journalctl -u seatd -p warning` shows only what needs attention. `format = "json"`
writes one JSON object per line instead of key=value.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import structlog

PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class LogConfig:
    # "keyvalue" or "json".
    format: str = "keyvalue"
    # "debug", "info", "warning" or "error".
    level: str = "info"
    # Prefix lines with their syslog priority: "auto" (under systemd), "yes" or "no".
    syslog_prefix: str = "auto"


def _prefixed(_: Any, method: str, line: str) -> str:
    return f"<{PRIORITY.get(method, 6)}>{line}"


def configure(config: LogConfig | None = None) -> None:
    config = config or LogConfig()
    prefix = config.syslog_prefix == "yes" or (
        config.syslog_prefix == "auto" and "JOURNAL_STREAM" in os.environ
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if config.format == "json"
        else structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"])
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    if prefix:
        processors.append(_prefixed)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[config.level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
