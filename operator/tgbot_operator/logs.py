"""Logging setup: plain or JSON lines, with a last-line-of-defence token filter."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from .redaction import SecretRegistry, redact


class RedactingFilter(logging.Filter):
    """Masks the secrets the operator holds (``registry``), bot-token-looking strings,
    ``/bot<token>`` paths and private keys in every record.

    The operator never logs secrets on purpose; this catches third-party messages (URLs in errors)
    and mistakes. It sits on the root handler *and* on kopf's ``kopf.objects`` logger, whose
    records kopf also posts as Events (through its own handler, which the root handler's filters
    never see).
    """

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self._redact = registry.redact if registry is not None else redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned_exc = self._redact(text)
            if cleaned_exc != text:
                record.exc_info = None
                record.exc_text = cleaned_exc
        return True


#: kopf's per-object logger: its records go to the root handlers and are posted as Events.
KOPF_OBJECTS_LOGGER = "kopf.objects"


def object_name(record: logging.LogRecord) -> str | None:
    """``namespace/name`` of the object a kopf object logger's record is about."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    namespace = ref.get("namespace")
    return f"{namespace}/{ref['name']}" if namespace else str(ref["name"])


class TextFormatter(logging.Formatter):
    """Plain lines; records about an object are prefixed with ``[namespace/name]``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        name = object_name(record)
        if name:
            head, sep, tail = text.partition(record.message)
            return f"{head}[{name}] {record.message}{tail}" if sep else text
        return text


class JsonLinesFormatter(JsonFormatter):
    """``{"time", "level", "logger", "message", "object"?, "exc_info"?}`` per line.

    Only these fields: kopf attaches its settings and object references to records as extras,
    which are no log fields (and the settings do not serialize).
    """

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_record["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record["message"] = record.getMessage()
        name = object_name(record)
        if name:
            log_record["object"] = name
        for key in ("exc_info", "stack_info"):
            if message_dict.get(key):
                log_record[key] = message_dict[key]


def setup_logging(level: str, json_logs: bool, registry: SecretRegistry | None = None) -> None:
    redacting = RedactingFilter(registry)
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(redacting)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    install_object_filter(redacting)
    # Library chatter that is noise at INFO.
    for noisy in ("urllib3", "kubernetes", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def install_object_filter(redacting: RedactingFilter) -> None:
    """Filter kopf's object logger itself (once): what kopf posts as Events is masked too."""
    objects = logging.getLogger(KOPF_OBJECTS_LOGGER)
    for old in [f for f in objects.filters if isinstance(f, RedactingFilter)]:
        objects.removeFilter(old)
    objects.addFilter(redacting)
