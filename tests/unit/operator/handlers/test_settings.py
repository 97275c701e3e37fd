"""kopf's settings: Events that kopf posts name the operator, not kopf; API outages are waited
out, never escalated."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sized

import kopf

from modelyard_operator.handlers.settings import API_BACKOFF_CAP, API_BACKOFFS, configure


def test_events_kopf_posts_name_the_operator() -> None:
    settings = kopf.OperatorSettings()
    assert settings.posting.reporting_component == "kopf"
    configure(settings)
    assert settings.posting.reporting_component == "modelyard-operator"
    assert settings.posting.event_name_prefix == "modelyard-operator-"


def test_kopf_retries_a_failing_api_request_for_as_long_as_it_fails() -> None:
    """kopf gives up on a request once its backoffs run out, and that stops the operator; an
    outage of any length must instead be waited out, at most ``API_BACKOFF_CAP`` apart."""
    settings = kopf.OperatorSettings()
    configure(settings)
    backoffs = settings.networking.error_backoffs
    assert not isinstance(backoffs, Sized)  # kopf counts down only a sized sequence
    assert isinstance(backoffs, Iterable)
    first = list(itertools.islice(backoffs, 3000))
    again = list(itertools.islice(backoffs, 3000))  # every request starts from the beginning
    assert first == again
    assert first[:8] == list(API_BACKOFFS)
    assert max(first) == API_BACKOFF_CAP == first[-1]
    assert sum(first) > 24 * 3600  # and on: a day's outage is still being waited out
