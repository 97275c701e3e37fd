"""``make chart``: write what the Helm chart (``charts/modelyard``) takes from elsewhere.

A chart cannot read files outside its directory, so each of these has one source and a copy
under ``charts/modelyard/files/`` that this command writes:

    manifests/rbac/clusterrole.yaml, leader-election-role.yaml -> files/rbac/  (the rules)
    dashboards/*.json                                   -> files/dashboards/
    deploy/prometheus/modelyard-alerts.yaml             -> files/prometheus/
    deploy/prometheus-adapter/rules.yaml                -> files/prometheus-adapter/

and two are generated: the ``config`` part of ``values.schema.json`` from the operator's
``OperatorConfig`` (so a mistyped setting fails at ``helm install``, naming it), and
``README.md`` from ``README.md.tmpl``, the ``# --`` comments of ``values.yaml`` (helm-docs
style) and ``OperatorConfig``'s field docs.

    python -m hack.chart --write     # write every output
    python -m hack.chart --check     # exit 1 naming each stale, missing or extra file

The CRD is not copied: ``make crds`` writes ``charts/modelyard/crds/``, which the optional
template copy (``crds.install``) reads with ``.Files.Get``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from modelyard_operator.config import OperatorConfig

ROOT: Final = Path(__file__).resolve().parents[1]
CHART: Final = Path("charts/modelyard")
# (source glob relative to the repository, directory under the chart's files/)
COPIES: Final = (
    ("manifests/rbac/clusterrole.yaml", "files/rbac"),
    ("manifests/rbac/leader-election-role.yaml", "files/rbac"),
    ("dashboards/*.json", "files/dashboards"),
    ("deploy/prometheus/modelyard-alerts.yaml", "files/prometheus"),
    ("deploy/prometheus-adapter/rules.yaml", "files/prometheus-adapter"),
)
# Operator settings the chart derives from its own values (the templates refuse them in config).
CHART_MANAGED: Final = frozenset({
    "default_runtime_image", "metrics_port", "health_port", "leader_election",
    "leader_election_namespace", "leader_election_lease_name",
    "leader_election_lease_duration_seconds", "leader_election_renew_deadline_seconds",
    "leader_election_retry_period_seconds",
})  # fmt: skip
_SCHEMA_KEYS: Final = (
    "type", "description", "default", "enum", "pattern", "minLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "items",
)  # fmt: skip


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def copies(root: Path) -> dict[Path, str]:
    """Chart-relative path -> content, for every copied file."""
    out: dict[Path, str] = {}
    for pattern, target in COPIES:
        sources = sorted(root.glob(pattern))
        if not sources:
            raise FileNotFoundError(f"`make chart` copies {pattern}, which does not exist")
        for source in sources:
            out[Path(target) / source.name] = source.read_text()
    return out


def settings() -> Iterator[tuple[str, dict[str, Any]]]:
    """(snake name, JSON schema) of every operator setting a user sets through ``config``."""
    properties = OperatorConfig.model_json_schema(mode="validation")["properties"]
    for name, schema in properties.items():
        if name not in CHART_MANAGED:
            yield name, schema


def config_schema() -> dict[str, Any]:
    """``values.schema.json``'s ``config``: the operator's settings, camelCase, nothing else."""
    properties: dict[str, Any] = {}
    for name, schema in settings():
        node = {key: schema[key] for key in _SCHEMA_KEYS if key in schema}
        if "description" in node:
            node["description"] = " ".join(node["description"].split())
        if node.get("type") == "array":  # a tuple in Python; a list (or "a,b") in values
            node["items"] = {"type": "string"}
        properties[camel(name)] = node
    return {
        "type": "object",
        "description": "Operator settings (env MODELYARD_OPERATOR_<SETTING>); unset ones keep "
        "the operator's default.",
        "additionalProperties": False,
        "properties": properties,
    }


def schema(root: Path) -> str:
    path = root / CHART / "values.schema.json"
    current = json.loads(path.read_text())
    current["properties"]["config"] = config_schema()
    return json.dumps(current, indent=2, sort_keys=False) + "\n"


# -- README ---------------------------------------------------------------------------------
_KEY: Final = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?: |$)")


def documented_values(text: str) -> Iterator[tuple[str, str]]:
    """(dotted key, description) for every key preceded by a ``# --`` comment, in file order.
    The description goes on over the following ``#`` lines until the key."""
    parents: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        parents = [(i, k) for i, k in parents if i < indent]
        key = ".".join([k for _, k in parents] + [match["key"]])
        parents.append((indent, match["key"]))
        if pending is not None:
            yield key, " ".join(part for part in pending if part)
            pending = None


def lookup(values: Any, dotted: str) -> Any:
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def type_name(value: Any) -> str:
    for python, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string"),
                         (list, "list"), (dict, "object")):  # fmt: skip
        if isinstance(value, python):
            return name
    return "null"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def values_table(text: str) -> str:
    values = yaml.safe_load(text)
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, description in documented_values(text):
        value = lookup(values, key)
        default = json.dumps(value, separators=(", ", ": "))
        rows.append(f"| `{key}` | {type_name(value)} | `{cell(default)}` | {cell(description)} |")
    return "\n".join(rows)


def config_table() -> str:
    rows = ["| Setting | Env | Default | Description |", "|---|---|---|---|"]
    for name, node in settings():
        default = json.dumps(node.get("default"), separators=(", ", ": "))
        description = " ".join(str(node.get("description", "")).split())
        env = "MODELYARD_OPERATOR_" + name.upper()
        rows.append(
            f"| `config.{camel(name)}` | `{env}` | `{cell(default)}` | {cell(description)} |"
        )
    return "\n".join(rows)


def readme(root: Path) -> str:
    chart = yaml.safe_load((root / CHART / "Chart.yaml").read_text())
    template = (root / CHART / "README.md.tmpl").read_text()
    return (
        template.replace("{{ version }}", str(chart["version"]))
        .replace("{{ app_version }}", str(chart["appVersion"]))
        .replace("{{ kube_version }}", str(chart["kubeVersion"]))
        .replace("{{ values_table }}", values_table((root / CHART / "values.yaml").read_text()))
        .replace("{{ config_table }}", config_table())
    )


def outputs(root: Path) -> dict[Path, str]:
    """Chart-relative path -> what it must contain."""
    out = copies(root)
    out[Path("values.schema.json")] = schema(root)
    out[Path("README.md")] = readme(root)
    return out


def drift(root: Path) -> list[str]:
    """What differs from ``outputs``: stale or missing outputs, and copies without a source."""
    expected = outputs(root)
    problems = [
        f"{CHART / path} is stale or missing"
        for path, text in sorted(expected.items())
        if not (root / CHART / path).exists() or (root / CHART / path).read_text() != text
    ]
    for _, target in COPIES:
        for path in sorted((root / CHART / target).glob("*")):
            if path.relative_to(root / CHART) not in expected:
                problems.append(f"{path.relative_to(root)} has no source any more")
    return problems


def write(root: Path) -> None:
    expected = outputs(root)
    for _, target in COPIES:  # copies whose source went away
        for path in (root / CHART / target).glob("*"):
            if path.relative_to(root / CHART) not in expected:
                path.unlink()
    for path, text in expected.items():
        (root / CHART / path).parent.mkdir(parents=True, exist_ok=True)
        (root / CHART / path).write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack.chart", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write every output")
    mode.add_argument("--check", action="store_true", help="exit 1 if an output has drifted")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    if args.write:
        write(args.root)
        return 0
    problems = drift(args.root)
    for problem in problems:
        print(f"{problem}: run `make chart`", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
