"""The trust settings: the model key file and the metrics port, from env and flags, and back."""

from __future__ import annotations

import pytest

from modelyard_runtime.cli import build_parser
from modelyard_runtime.errors import SettingsError
from modelyard_runtime.settings import Settings, settings_from, to_env


def parse(*argv: str, env: dict[str, str] | None = None) -> Settings:
    args = build_parser().parse_args(["serve", "--model", "/m.onnx", *argv])
    return settings_from(args, env or {})


def test_metrics_stay_on_the_http_port_unless_set() -> None:
    assert parse().metrics_port is None
    assert parse(env={"MODELYARD_METRICS_PORT": ""}).metrics_port is None
    assert parse(env={"MODELYARD_METRICS_PORT": "8082"}).metrics_port == 8082
    assert parse("--metrics-port", "0").metrics_port == 0
    assert "MODELYARD_METRICS_PORT" not in to_env(parse())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--metrics-port", "8080"), "metrics port must differ from the http and grpc ports"),
        (("--metrics-port", "70000"), "metrics port must be 0..65535"),
        (("--metrics-port", "x"), "--metrics-port='x' is invalid"),
        (("--metrics-port", "0", "--processes", "2"), "metrics port 0 (pick one) needs"),
    ],
)
def test_bad_metrics_ports_are_named(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(*argv)
    assert message in str(caught.value)


def test_round_trip_through_env() -> None:
    settings = parse("--metrics-port", "8082", "--model-key-file", "/keys/key")
    env = to_env(settings)
    assert env["MODELYARD_METRICS_PORT"] == "8082"
    assert env["MODELYARD_MODEL_KEY_FILE"] == "/keys/key"
    assert settings_from(None, env) == settings
