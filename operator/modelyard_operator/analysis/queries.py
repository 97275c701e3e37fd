"""The PromQL each analysis check runs (docs/rollouts.md shows them). Pure.

Series are selected by the runtime's own labels (design §5): ``model`` (the ModelDeployment's
name), ``revision`` and ``track``, plus ``namespace``, which Prometheus adds from the pod's
namespace (a PodMonitor or the Kubernetes service discovery relabeling). Every window is the
analysis interval.
"""

from __future__ import annotations

import dataclasses

from modelyard_operator.api.v1alpha1 import TEMPLATE_KEYS
from modelyard_runtime.contract.names import REQUEST_DURATION, REQUESTS_TOTAL


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """What one analysis looks at."""

    namespace: str
    name: str  # the ModelDeployment's name: the runtime's ``model`` label
    canary_revision: str
    stable_revision: str
    interval: str  # e.g. "30s": each query's range

    def selector(self, track: str) -> str:
        revision = self.canary_revision if track == "canary" else self.stable_revision
        return (
            f'namespace="{_quote(self.namespace)}",model="{_quote(self.name)}",'
            f'revision="{_quote(revision)}",track="{track}"'
        )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def request_count(window: Window, track: str) -> str:
    """Requests the track answered in the window."""
    return f"sum(increase({REQUESTS_TOTAL}{{{window.selector(track)}}}[{window.interval}]))"


def error_rate(window: Window) -> str:
    """Share of the canary's answers that were 5xx (0 when there were none)."""
    sel = window.selector("canary")
    errors = f'sum(rate({REQUESTS_TOTAL}{{{sel},code=~"5.."}}[{window.interval}]))'
    total = f"sum(rate({REQUESTS_TOTAL}{{{sel}}}[{window.interval}]))"
    return f"({errors} or vector(0)) / {total}"


def latency(window: Window, track: str, quantile: float) -> str:
    """The track's latency quantile over the window, in seconds."""
    sel = window.selector(track)
    rate = f"rate({REQUEST_DURATION}_bucket{{{sel}}}[{window.interval}])"
    return f"histogram_quantile({quantile:g}, sum by (le) ({rate}))"


def custom(template: str, window: Window) -> str:
    """A user's query with {{namespace}} {{name}} {{revision}} {{track}} {{interval}} filled."""
    values = {
        "namespace": window.namespace,
        "name": window.name,
        "revision": window.canary_revision,
        "track": "canary",
        "interval": window.interval,
    }
    assert set(values) == set(TEMPLATE_KEYS)
    query = template
    for key, value in values.items():
        query = query.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return query
