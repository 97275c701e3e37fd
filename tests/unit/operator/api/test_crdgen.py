"""The CRD is generated from the pydantic models, is structural, and every copy is current."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelyard_operator.api import crdgen
from modelyard_operator.api.crdgen import OUTPUTS, ROOT, build_crd, render, structural


def nodes(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        yield path, schema
        for key, child in schema.get("properties", {}).items():
            yield from nodes(child, f"{path}.{key}")
        if "items" in schema:
            yield from nodes(schema["items"], f"{path}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def spec_schema() -> dict[str, Any]:
    version = build_crd()["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("output", OUTPUTS, ids=str)
def test_every_committed_copy_matches_the_models(output: Any) -> None:
    assert (ROOT / output).read_text() == render(), f"{output} is stale: run `make crds`"


def test_check_mode_reports_drift(tmp_path: Any) -> None:
    for output in OUTPUTS:
        (tmp_path / output).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / output).write_text(render())
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / OUTPUTS[1]).write_text(render() + "# edited by hand\n")
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1


def test_schema_is_structural() -> None:
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"}
    for path, node in nodes(spec_schema()):
        assert not forbidden & node.keys(), (path, forbidden & node.keys())
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in node:
                assert node[bound] is True, path
        assert node.get("default", 0) is not None, path


def test_every_spec_field_has_a_description() -> None:
    spec = spec_schema()["properties"]["spec"]
    missing = [
        path for path, node in nodes(spec, "spec") if path != "spec" and not node.get("description")
    ]
    # Items of lists of scalars and map values inherit their parent's description.
    missing = [p for p in missing if not p.endswith(("[]", "{}"))]
    assert missing == []


def test_structural_rewrites_what_pydantic_emits() -> None:
    defs = {"Inner": {"type": "object", "title": "Inner", "properties": {"x": {"type": "integer"}}}}
    node = {
        "anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}],
        "default": None,
        "title": "Outer",
        "description": "line one\n    line two",
    }
    assert structural(node, defs) == {
        "type": "object",
        "nullable": True,
        "description": "line one line two",
        "properties": {"x": {"type": "integer"}},
    }
    assert structural({"type": "number", "exclusiveMinimum": 0}, {}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    assert structural({"type": "number", "exclusiveMaximum": 1}, {}) == {
        "type": "number",
        "maximum": 1,
        "exclusiveMaximum": True,
    }
    assert structural({"type": "string", "const": "hpa"}, {}) == {"type": "string", "enum": ["hpa"]}
    assert structural({"type": "object", "additionalProperties": {"type": "string"}}, {}) == {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    assert structural({"type": "object"}, {}) == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_a_union_that_cannot_be_structural_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot express union"):
        structural({"anyOf": [{"type": "string"}, {"type": "boolean"}]}, {})


def test_scale_subresource_and_names() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert crd["spec"]["names"]["shortNames"] == ["mdep"]
    assert crd["spec"]["names"]["categories"] == ["modelyard"]
