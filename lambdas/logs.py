"""Structured JSON logs: one object per line with stable fields.

    log = get_logger("worker")
    log.info("object copied", extra={"key": key, "bytes": size, "method": "multipart", "parts": 12})

``bind(run_id=..., worker=..., payload=...)`` adds fields to every later line of this process (the
handler binds them once per invocation).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

# The fields every sfncopy log line may carry; anything else in ``extra`` is logged too.
STABLE_FIELDS = ("run_id", "worker", "payload", "task_id", "key", "bytes", "method", "parts", "error")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_context: dict[str, Any] = {}


def bind(**fields: Any) -> None:
    """Set fields that every following log line carries (until the next ``bind``)."""
    _context.clear()
    _context.update({k: v for k, v in fields.items() if v is not None})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context,
        }
        line.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"sfncopy.{name}")
    root = logging.getLogger("sfncopy")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(os.environ.get("SFNCOPY_LOG_LEVEL", "INFO").upper())
        root.propagate = False
    return logger
