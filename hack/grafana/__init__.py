"""Dashboards as code: the Grafana dashboards (``kit``, ``serving``, ``rollouts``), their queries
as Prometheus sees them (``queries``), the live setup that feeds them (``live``, ``traffic``)
and the preview images drawn from it (``preview``). ``hack/dashboards.py`` writes the JSON.
"""
