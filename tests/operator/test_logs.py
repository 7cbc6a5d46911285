"""The logging setup masks tokens, whatever logs them."""

from __future__ import annotations

import json
import logging

import pytest

from tgbot_operator.logs import RedactingFilter, setup_logging

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


@pytest.mark.parametrize("json_logs", [True, False])
def test_setup(capsys: pytest.CaptureFixture[str], json_logs: bool) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
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
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
