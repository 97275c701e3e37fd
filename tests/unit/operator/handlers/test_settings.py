"""kopf's settings: Events that kopf posts name the operator, not kopf."""

from __future__ import annotations

import kopf

from modelyard_operator.handlers.settings import configure


def test_events_kopf_posts_name_the_operator() -> None:
    settings = kopf.OperatorSettings()
    assert settings.posting.reporting_component == "kopf"
    configure(settings)
    assert settings.posting.reporting_component == "modelyard-operator"
    assert settings.posting.event_name_prefix == "modelyard-operator-"
