"""Text logs keep the structured fields (update_id, reason, ...) that JSON logs carry."""

from __future__ import annotations

import logging

import pytest

from tgbot_sidecar.logs import setup_logging


def test_text_logs_show_the_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", json_lines=False)
    logging.getLogger("tgbot_sidecar.test").warning(
        "update not delivered to the bot", extra={"update_id": 42, "reason": "upstream_timeout"}
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.endswith("update not delivered to the bot update_id=42 reason=upstream_timeout"), line


def test_text_logs_without_extras_are_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", json_lines=False)
    logging.getLogger("tgbot_sidecar.test").info("sidecar listening")
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("tgbot_sidecar.test: sidecar listening")
