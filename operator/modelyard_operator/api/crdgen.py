"""Generate the ModelDeployment CRD from the pydantic models (``python -m ... --write``).

Pydantic's JSON schema is not what ``apiextensions.k8s.io/v1`` accepts: it uses ``$ref``, null
unions, numeric ``exclusiveMinimum``, ``const`` and ``title``. ``structural`` rewrites it into a
structural schema. ``--write`` writes every copy in ``OUTPUTS``; ``--check`` exits 1 when a copy
has drifted (CI and a unit test run it). Pure apart from ``main``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel

from modelyard_operator.api import v1alpha1

ROOT: Final = Path(__file__).resolve().parents[3]
OUTPUTS: Final = (
    Path("crds/modeldeployments.yaml"),
    Path("charts/modelyard/crds/modeldeployments.yaml"),
)
_DROP: Final = frozenset({"title", "additionalProperties", "$defs", "discriminator"})

Schema = dict[str, Any]


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Schema:
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
        target.update({k: v for k, v in node.items() if k != "$ref"})
        return _resolve(target, defs)
    return dict(node)


def structural(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Schema:
    """Rewrite one pydantic schema node (and its children) into a structural CRD schema node."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        options = [_resolve(option, defs) for option in node.pop("anyOf")]
        non_null = [option for option in options if option.get("type") != "null"]
        if node.get("x-kubernetes-int-or-string"):
            out: Schema = {"x-kubernetes-int-or-string": True}
            if "description" in node:
                out["description"] = node["description"]
            return out
        if len(non_null) != 1:
            raise ValueError(f"cannot express union {options!r} structurally")
        merged = {**non_null[0], **node}
        if len(non_null) < len(options):
            merged["nullable"] = True
        return structural(merged, defs)
    out = {}
    for key, value in node.items():
        if key in _DROP or (key == "default" and value is None):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum":
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        elif key == "properties":
            out["properties"] = {name: structural(child, defs) for name, child in value.items()}
        elif key == "description":
            out["description"] = " ".join(value.split())
        elif key == "items":
            out["items"] = structural(value, defs)
        else:
            out[key] = value
    if node.get("type") == "object" and "properties" not in node:
        extra = node.get("additionalProperties", True)
        if extra is True or extra == {}:
            out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            out["additionalProperties"] = structural(extra, defs)
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise ValueError(f"schema node has no type: {node!r}")
    return out


def model_schema(model: type[BaseModel], *, strip_defaults: bool = False) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    converted = structural(raw, raw.get("$defs", {}))
    return _without_defaults(converted) if strip_defaults else converted


def _without_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


PRINTER_COLUMNS: Final = (
    {"name": "Version", "type": "string", "jsonPath": ".spec.model.version"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Stable", "type": "string", "jsonPath": ".status.stable.version"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canary.version"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.autoscaling.desiredReplicas"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
    {"name": "Available", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Scaling", "type": "string", "jsonPath": ".status.autoscaling.reason", "priority": 1},
)


def build_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition, deterministic."""
    spec = model_schema(v1alpha1.ModelDeploymentSpec)
    status = model_schema(v1alpha1.ModelDeploymentStatus, strip_defaults=True)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{v1alpha1.PLURAL}.{v1alpha1.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modelyard"},
        },
        "spec": {
            "group": v1alpha1.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": v1alpha1.KIND,
                "listKind": f"{v1alpha1.KIND}List",
                "plural": v1alpha1.PLURAL,
                "singular": v1alpha1.SINGULAR,
                "shortNames": list(v1alpha1.SHORT_NAMES),
                "categories": list(v1alpha1.CATEGORIES),
            },
            "versions": [
                {
                    "name": v1alpha1.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [dict(c) for c in PRINTER_COLUMNS],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": v1alpha1.ModelDeployment.__doc__,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `make crds` from operator/modelyard_operator/api; do not edit.\n"
    # Through JSON: a schema used twice (a label selector) is written out twice, not as an alias.
    crd = json.loads(json.dumps(build_crd()))
    return header + yaml.safe_dump(crd, sort_keys=True, width=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crdgen", description=__doc__)
    parser.add_argument("--write", action="store_true", help="write every generated copy")
    parser.add_argument("--check", action="store_true", help="exit 1 if a copy has drifted")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    text = render()
    stale = [out for out in OUTPUTS if _read(args.root / out) != text]
    if args.write:
        for out in OUTPUTS:
            (args.root / out).parent.mkdir(parents=True, exist_ok=True)
            (args.root / out).write_text(text)
        return 0
    if args.check:
        for out in stale:
            print(f"{out} is out of date: run `make crds`", file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write(text)
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
