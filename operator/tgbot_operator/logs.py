"""Logging setup: tgbot_kit's one schema, with a last-line-of-defence token filter.

The records about a TelegramBot carry its ``namespace/name`` as the field ``object``.
"""

from __future__ import annotations

import logging

import tgbot_kit

from . import names
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


class QuietHandlers(logging.Filter):
    """Drops kopf's "Handler '<id>' succeeded." for handlers that run on every watch event.

    kopf logs that line at INFO after each handler call; for
    :data:`~tgbot_operator.names.FORGET_MANAGED_FIELDS` it would be ~6 lines per TelegramBot
    registered and one per status write, saying nothing. Their failures are still logged.
    """

    def __init__(self, handler_ids: tuple[str, ...] = (names.FORGET_MANAGED_FIELDS,)) -> None:
        super().__init__()
        # kopf formats the message itself (an f-string, no args): execution.py, str(Handler).
        self._messages = frozenset(f"Handler {handler_id!r} succeeded." for handler_id in handler_ids)

    def filter(self, record: logging.LogRecord) -> bool:
        # (msg may be any object, a dict or a list among them: not always hashable)
        return not (isinstance(record.msg, str) and not record.args and record.msg in self._messages)


#: kopf's per-object logger: its records go to the root handlers and are posted as Events.
KOPF_OBJECTS_LOGGER = "kopf.objects"
#: What kopf attaches to its records with ``extra=``: its settings (which do not serialize) and
#: the object reference (logged as ``object``) are no log fields.
KOPF_EXTRAS = ("settings", "k8s_ref", "k8s_skip")


def object_name(record: logging.LogRecord) -> str | None:
    """``namespace/name`` of the object a kopf object logger's record is about."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    namespace = ref.get("namespace")
    return f"{namespace}/{ref['name']}" if namespace else str(ref["name"])


def _object_field(record: logging.LogRecord) -> dict[str, object]:
    name = object_name(record)
    return {"object": name} if name else {}


def setup_logging(level: str, json_logs: bool, registry: SecretRegistry | None = None) -> None:
    redacting = RedactingFilter(registry)
    tgbot_kit.setup_logging(
        level,
        json_logs,
        filters=[redacting],
        context=_object_field,
        hidden_extras=KOPF_EXTRAS,
        # Library chatter that is noise at INFO.
        quiet={"urllib3": logging.WARNING, "kubernetes": logging.WARNING, "asyncio": logging.WARNING},
    )
    install_object_filter(redacting)


def install_object_filter(redacting: RedactingFilter) -> None:
    """Filter kopf's object logger itself (once): what kopf posts as Events is masked too."""
    objects = logging.getLogger(KOPF_OBJECTS_LOGGER)
    for old in [f for f in objects.filters if isinstance(f, RedactingFilter | QuietHandlers)]:
        objects.removeFilter(old)
    objects.addFilter(QuietHandlers())  # first: a dropped record need not be redacted
    objects.addFilter(redacting)
