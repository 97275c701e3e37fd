"""Times in status: RFC 3339 in UTC, to the millisecond (rollout steps can be seconds apart).

Pure; ``now`` always comes from the caller.
"""

from __future__ import annotations

import datetime


def rfc3339(moment: datetime.datetime) -> str:
    """``2026-01-01T00:00:00.250Z``; whole seconds print without a fraction."""
    moment = moment.astimezone(datetime.UTC)
    if moment.microsecond // 1000 == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime.datetime:
    """The inverse of ``rfc3339`` (also accepts what Kubernetes writes)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(datetime.UTC)
