"""The logging setup masks tokens, whatever logs them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from tgbot_operator import names
from tgbot_operator.logs import KOPF_OBJECTS_LOGGER, QuietHandlers, RedactingFilter, setup_logging

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_filter_masks_messages_args_and_tracebacks() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "calling %s", (f"http://h/bot{TOKEN}/getMe",), None
    )
    RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()
    try:
        raise RuntimeError(f"failed: {TOKEN}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert TOKEN not in text
    assert "failed: ***" in text


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """setup_logging changes process-wide state: the root handlers and level, and the filters of
    kopf's object logger. Given back afterwards, so that no later test runs with them."""
    root, objects = logging.getLogger(), logging.getLogger(KOPF_OBJECTS_LOGGER)
    saved = root.handlers[:], root.level, objects.filters[:]
    try:
        yield
    finally:
        root.handlers[:], level, objects.filters[:] = saved
        root.setLevel(level)


@pytest.mark.parametrize("json_logs", [True, False])
@pytest.mark.usefixtures("restored_logging")
def test_setup(capsys: pytest.CaptureFixture[str], json_logs: bool) -> None:
    setup_logging("debug", json_logs)
    logging.getLogger("tgbot_operator.test").info("token %s", TOKEN)
    err = capsys.readouterr().err
    assert TOKEN not in err
    if json_logs:
        line = json.loads(err.strip().splitlines()[-1])
        assert line["level"] == "INFO"
        assert line["logger"] == "tgbot_operator.test"
        assert line["message"] == "token ***"
    assert logging.getLogger("kubernetes").level == logging.WARNING


def test_the_success_of_a_handler_run_on_every_event_is_not_logged_and_its_failure_is() -> None:
    def record(msg: object, *args: object) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, msg, args, None)

    quiet = QuietHandlers()
    handler = f"Handler '{names.FORGET_MANAGED_FIELDS}'"
    assert not quiet.filter(record(f"{handler} succeeded."))
    assert quiet.filter(record(f"{handler} failed with an exception and will stop now: boom"))
    assert quiet.filter(record("Handler 'spec-changed' succeeded."))
    assert quiet.filter(record("%s succeeded.", handler))  # not kopf's form: kept
    assert quiet.filter(record({"a": 1}))  # any object may be a msg, an unhashable one too


@pytest.mark.usefixtures("restored_logging")
def test_kopfs_object_logger_gets_the_quiet_filter_once(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", True)
    setup_logging("info", True)
    objects = logging.getLogger(KOPF_OBJECTS_LOGGER)
    assert sum(isinstance(f, QuietHandlers) for f in objects.filters) == 1
    objects.info(f"Handler '{names.FORGET_MANAGED_FIELDS}' succeeded.")
    objects.info("Handler 'spec-changed' succeeded.")
    lines = [json.loads(line)["message"] for line in capsys.readouterr().err.strip().splitlines()]
    assert lines == ["Handler 'spec-changed' succeeded."]
