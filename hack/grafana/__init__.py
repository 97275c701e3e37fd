"""Dashboards as code: the Grafana dashboards (``kit``, ``serving``, ``rollouts``) and their
queries as Prometheus sees them (``queries``). ``hack/dashboards.py`` writes the JSON.
"""
