"""One logging setup for the three programs: text for people, JSON lines for log pipelines.

The JSON schema, the same in every program (docs/operator.md documents it)::

    {"time": "2026-01-01T12:00:00.000+00:00", "level": "INFO", "logger": "tgbot_sidecar.app",
     "message": "...", <context fields>, <extra= fields>, "exc_info": "...", "stack_info": "..."}

Text lines carry the same fields: ``TIME LEVEL logger: message key=value ...``. Masking secrets is
the program's business (it passes its filters); this module only formats.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

#: Adds fields computed from a record (the operator's ``object``: the TelegramBot it is about).
Context = Callable[[logging.LogRecord], Mapping[str, object]]

# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class _Fields:
    def __init__(self, context: Context | None, hidden: Collection[str]) -> None:
        self.context = context
        self.hidden = _STANDARD | frozenset(hidden)

    def of(self, record: logging.LogRecord) -> dict[str, object]:
        fields = dict(self.context(record)) if self.context else {}
        for key, value in vars(record).items():
            if key not in self.hidden and key not in fields:
                fields[key] = value
        return fields


class JsonLinesFormatter(JsonFormatter):
    def __init__(self, fields: _Fields) -> None:
        super().__init__(json_default=str)
        self.fields = fields

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_record["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record["message"] = record.getMessage()
        log_record.update(self.fields.of(record))
        for key in ("exc_info", "stack_info"):
            if message_dict.get(key):
                log_record[key] = message_dict[key]


class TextFormatter(logging.Formatter):
    def __init__(self, fields: _Fields) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.fields = fields

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extras = " ".join(
            f"{key}={value if isinstance(value, str | int | float) else json.dumps(value, default=str)}"
            for key, value in self.fields.of(record).items()
        )
        return f"{line} {extras}" if extras else line


def setup_logging(
    level: str,
    json_lines: bool,
    *,
    filters: Iterable[logging.Filter] = (),
    context: Context | None = None,
    hidden_extras: Collection[str] = (),
    quiet: Mapping[str, int] | None = None,
) -> logging.Handler:
    """One stderr handler on the root logger (replacing any), at ``level``.

    ``filters`` go on the handler (the operator's token redaction); ``context`` adds fields;
    ``hidden_extras`` are ``extra=`` attributes that are no log fields (kopf's settings);
    ``quiet`` sets minimum levels of chatty loggers. Returns the handler.
    """
    fields = _Fields(context, hidden_extras)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter(fields) if json_lines else TextFormatter(fields))
    for item in filters:
        handler.addFilter(item)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, minimum in (quiet or {}).items():
        logging.getLogger(name).setLevel(max(minimum, root.level))
    return handler
