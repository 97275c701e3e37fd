"""Structured logs: one JSON object a line, with the Kubernetes object when kopf knows it."""

from __future__ import annotations

import json
import logging

from modelyard_operator.__main__ import JsonFormatter


def test_json_lines_carry_level_logger_message_and_object() -> None:
    record = logging.LogRecord(
        "kopf.objects", logging.WARNING, __file__, 1, "retry %s", ("x",), None
    )
    record.k8s_ref = {"namespace": "risk", "name": "fraud"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "kopf.objects"
    assert entry["message"] == "retry x"
    assert entry["object"] == "risk/fraud"
    assert "T" in entry["time"]


def test_exceptions_are_kept_in_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("m", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]
