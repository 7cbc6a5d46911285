"""Text logs keep the structured fields (update_id, reason, ...) that JSON logs carry."""

from __future__ import annotations

import json
import logging

import pytest

from tgbot_kit import setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def test_text_logs_show_the_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", json_lines=False)
    logging.getLogger("tgbot_sidecar.test").warning(
        "update not delivered to the bot", extra={"update_id": 42, "reason": "upstream_timeout"}
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.endswith("update not delivered to the bot update_id=42 reason=upstream_timeout"), line


def test_text_logs_without_extras_are_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", json_lines=False)
    logging.getLogger("tgbot_sidecar.test").info("sidecar listening")
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("tgbot_sidecar.test: sidecar listening")


def test_json_logs_carry_the_extra_fields_as_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", json_lines=True)
    logging.getLogger("tgbot_sidecar.test").warning("dropped", extra={"update_id": 42})
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (record["logger"], record["level"], record["message"], record["update_id"]) == (
        "tgbot_sidecar.test",
        "WARNING",
        "dropped",
        42,
    )
