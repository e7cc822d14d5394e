"""Log lines for operators: plain text or one JSON object per line, with the request id.

In the kernel so that every process can use it without Flask: ``balis serve`` and ``balis
demo`` (the web sets the request id), ``balis worker`` (no request: timestamps only).

``REQUEST_ID`` is a context variable, not a thread-local: the web's request thread hands
its broker work to the event loop thread with the caller's context (web/bridge.py), so
lines logged there for that request carry its id too.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any, Literal, get_args

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)

# The request a line is logged for (None: not inside a request).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "balis_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What logging.LogRecord always has: anything else on a record was passed in ``extra=``
# and goes into the JSON object as its own key (the access log's method, path, status...).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record as ``request_id`` (None outside one);
    a record that came with its own (``extra={"request_id": ...}``) keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """The classic line, with ``[request id]`` at the end of a line logged in a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        return f"{line} [{request_id}]" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC, milliseconds), level, logger, message,
    request_id inside a request, the record's ``extra`` fields, and the traceback as
    ``exc`` when there is one. Never raises on odd values: they are written as text."""

    def format(self, record: logging.LogRecord) -> str:
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        entry: dict[str, Any] = {
            "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(kind: LogFormat) -> logging.Formatter:
    if kind not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {kind!r}")
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(kind: LogFormat = "text", *, level: int = logging.WARNING,
              info_loggers: tuple[str, ...] = ()) -> None:
    """Every handler of the root logger (one on stderr if there is none) writes ``kind``
    lines with request ids; the loggers named in ``info_loggers`` log from INFO up,
    whatever the root's level."""
    logging.basicConfig(level=level, stream=sys.stderr)
    chosen = formatter(kind)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(chosen)
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
    for name in info_loggers:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
