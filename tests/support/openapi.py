"""Check an object against a CRD's structural OpenAPI v3 schema, as the apiserver checks it.

Covers what structural schemas use for shape: ``type``, ``properties``, ``items``, ``required``,
``enum``, ``pattern``, lengths and bounds, ``nullable``, ``additionalProperties`` and
``x-kubernetes-preserve-unknown-fields``. CEL rules are not evaluated (the apiserver tests do that).
Fields the schema does not know are reported apart from the errors, because the apiserver would
silently drop them: a test decides which of those it expects.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclasses.dataclass
class Findings:
    """What one object broke: schema errors, unknown (pruned) fields and values off an enum."""

    errors: list[str] = dataclasses.field(default_factory=list)
    unknown: set[str] = dataclasses.field(default_factory=set)
    enum_values: set[tuple[str, str]] = dataclasses.field(default_factory=set)


def check(
    value: Any, schema: Mapping[str, Any], path: str, *, skip: frozenset[str] = frozenset()
) -> Findings:
    """Walk ``value`` against ``schema``; ``path`` names the root ("" for a whole object).

    Paths are dotted, with ``[]`` for list items (``status.conditions[].reason``). A path in
    ``skip`` is not walked at all (recorded as unknown when the schema lacks it, else ignored).
    """
    findings = Findings()
    _walk(value, schema, path, skip, findings)
    return findings


def _walk(
    value: Any, schema: Mapping[str, Any], path: str, skip: frozenset[str], out: Findings
) -> None:
    if value is None:
        if not schema.get("nullable"):
            out.errors.append(f"{path}: null is not allowed")
        return
    kind = schema.get("type")
    if kind is not None:
        wanted = _TYPES[kind]
        if not isinstance(value, wanted) or (kind != "boolean" and isinstance(value, bool)):
            out.errors.append(f"{path}: {type(value).__name__} {value!r} is not {kind}")
            return
    if "enum" in schema and value not in schema["enum"]:
        out.enum_values.add((path, str(value)))
    if isinstance(value, str):
        _string(value, schema, path, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _number(value, schema, path, out)
    elif isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.errors.append(f"{path}: {len(value)} items, at most {schema['maxItems']}")
        for item in value:
            _walk(item, schema.get("items") or {}, f"{path}[]", skip, out)
    elif isinstance(value, dict):
        _object(value, schema, path, skip, out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _string(value: str, schema: Mapping[str, Any], path: str, out: Findings) -> None:
    if "pattern" in schema and not re.search(schema["pattern"], value):
        out.errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        out.errors.append(f"{path}: {value!r} is shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.errors.append(f"{path}: {value!r} is longer than {schema['maxLength']}")


def _number(value: float, schema: Mapping[str, Any], path: str, out: Findings) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        out.errors.append(f"{path}: {value} is below {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        out.errors.append(f"{path}: {value} is above {schema['maximum']}")


def _object(
    value: dict[str, Any],
    schema: Mapping[str, Any],
    path: str,
    skip: frozenset[str],
    out: Findings,
) -> None:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key in schema.get("required") or []:
        if key not in value:
            out.errors.append(f"{_join(path, key)}: required")
    for key, item in value.items():
        child = _join(path, key)
        if child in skip:
            if key not in properties:
                out.unknown.add(child)
            continue
        if key in properties:
            _walk(item, properties[key], child, skip, out)
        elif isinstance(additional, Mapping):
            _walk(item, additional, child, skip, out)
        elif additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
            continue
        else:
            out.unknown.add(child)
