"""An API fuzzer (schemathesis) against the runtime's own OpenAPI document (``/openapi.json``):
whatever it sends, no 5xx, and every answer is one the document lists, with its content type and
body schema. A real server process, with token auth on; a bounded number of examples (< 60 s).
"""

from __future__ import annotations

import itertools
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hack.testbed.processes import RuntimeProcess
from modelyard_runtime.server import openapi

pytestmark = pytest.mark.slow

TOKEN = "fuzz-token"
SERVED = itertools.cycle([True, False])
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_server(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    token = tmp_path_factory.mktemp("fuzz") / "token"
    token.write_text(TOKEN)
    process = RuntimeProcess(
        ["--model", str(models["tiny"]), "--processes", "1", "--auth-token-file", str(token),
         "--body-timeout-seconds", "5"]
    )  # fmt: skip
    try:
        yield process.wait_ready()
    finally:
        process.kill()


# The document the server serves at /openapi.json (a test below checks they are the same);
# loaded here, not from the server, so the tests are generated at collection.
schema = schemathesis.openapi.from_dict(openapi.document())


def test_the_fuzzed_document_is_the_served_one(fuzzed_server: str) -> None:
    with urllib.request.urlopen(fuzzed_server + "/openapi.json", timeout=10) as response:
        assert orjson.loads(response.read()) == openapi.document()


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_conform(case: Any, fuzzed_server: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    parameters = case.path_parameters or {}
    if "model" in parameters and next(SERVED):  # every other case reaches the served model
        parameters["model"] = "tiny"
        if "version" in parameters:
            parameters["version"] = "1"
    case.call_and_validate(base_url=fuzzed_server, headers=headers, checks=CHECKS, timeout=10)
