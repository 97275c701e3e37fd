"""kopf's settings: Events that kopf posts name the operator, not kopf; API outages are waited
out, never escalated."""

from __future__ import annotations

import asyncio
import itertools
import logging
import types
from collections.abc import Iterable, Sized
from typing import Any

import aiohttp
import kopf
import pytest

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


class RefusingSession:
    """An aiohttp session stand-in whose every request meets a refused connection; after
    ``refusals`` of them it raises ``EnoughError`` (which kopf does not retry)."""

    closed = False

    def __init__(self, refusals: int) -> None:
        self.left = refusals
        self.calls = 0

    async def request(self, **_: Any) -> Any:
        self.calls += 1
        if self.calls > self.left:
            raise EnoughError
        raise aiohttp.ClientConnectionError("connection refused")


class EnoughError(Exception):
    pass


async def kopf_request(settings: kopf.OperatorSettings, session: RefusingSession) -> None:
    """kopf's own request routine (private; pinned here because the setting relies on it)."""
    from kopf._cogs.clients import api

    context: Any = types.SimpleNamespace(server="https://127.0.0.1:1", session=session)
    await api.request(
        "get", "/api/v1/pods", settings=settings, context=context, logger=logging.getLogger()
    )


async def test_kopf_itself_escalates_an_outage_by_default_and_not_with_these_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The defect behind ``EndlessBackoffs``, in kopf's own code: with its defaults a request
    fails for good after 9 tries (an error that stops the operator); configured, it is still
    retrying after 500 (the sleeps between tries are skipped here)."""

    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)  # the module kopf's api sleeps with
    session = RefusingSession(refusals=500)
    with pytest.raises(aiohttp.ClientConnectionError):
        await kopf_request(kopf.OperatorSettings(), session)
    assert session.calls == 9

    settings = kopf.OperatorSettings()
    configure(settings)
    session = RefusingSession(refusals=500)
    with pytest.raises(EnoughError):
        await kopf_request(settings, session)
    assert session.calls == 501
