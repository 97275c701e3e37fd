"""The PromQL each check runs, selected by the runtime's labels (design §5)."""

from __future__ import annotations

from modelyard_operator.analysis import queries

W = queries.Window(namespace="prod", name="fraud", canary_revision="c1", stable_revision="s1",
                   interval="30s")  # fmt: skip
SEL = 'namespace="prod",model="fraud",revision="c1",track="canary"'


def test_error_rate_counts_5xx_and_is_zero_without_errors() -> None:
    assert queries.error_rate(W) == (
        f'(sum(rate(modelyard_requests_total{{{SEL},code=~"5.."}}[30s])) or vector(0)) / '
        f"sum(rate(modelyard_requests_total{{{SEL}}}[30s]))"
    )


def test_latency_and_count_per_track() -> None:
    assert queries.latency(W, "stable", 0.99) == (
        "histogram_quantile(0.99, sum by (le) (rate(modelyard_request_duration_seconds_bucket"
        '{namespace="prod",model="fraud",revision="s1",track="stable"}[30s])))'
    )
    assert queries.request_count(W, "canary") == (
        f"sum(increase(modelyard_requests_total{{{SEL}}}[30s]))"
    )


def test_custom_templates_are_filled_and_quotes_escaped() -> None:
    template = (
        'sum(rate(x{namespace="{{namespace}}",app="{{ name }}",rev="{{revision}}",'
        't="{{track}}"}[{{interval}}]))'
    )
    assert queries.custom(template, W) == (
        'sum(rate(x{namespace="prod",app="fraud",rev="c1",t="canary"}[30s]))'
    )
    odd = queries.Window(namespace="n", name='a"b', canary_revision="c", stable_revision="s",
                         interval="5s")  # fmt: skip
    assert 'model="a\\"b"' in odd.selector("canary")
