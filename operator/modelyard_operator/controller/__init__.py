"""The operator's logic between kopf and the pure decisions: observe -> analyse -> plan -> write.

Plain async functions and small classes over a ``KubeClient``, a ``MetricsSource``, a clock
and the indexes kopf keeps (any mappings), so fast tests run them with ``k8s.fake.FakeKube``,
dicts and a fixed ``now``. ``handlers`` binds them to kopf; nothing here imports kopf.
"""
