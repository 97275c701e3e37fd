"""Reading samples out of a Prometheus text exposition in tests."""

from __future__ import annotations


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) for every sample of metric ``name`` in a text exposition."""
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            pairs = (item.split("=", 1) for item in labels.split('",') if item)
            found.append(({k: v.strip('"') for k, v in pairs}, float(value)))
    return found


def value(text: str, name: str, **labels: str) -> float:
    matches = [v for found, v in samples(text, name) if labels.items() <= found.items()]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]
