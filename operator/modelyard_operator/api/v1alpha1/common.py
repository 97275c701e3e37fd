"""What every v1alpha1 model shares: camelCase wire names, CEL rules, durations and quantities.

Pydantic only: no kopf, no Kubernetes client, no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

URI_SCHEMES: Final = ("file", "pvc", "http", "https", "s3", "gs")
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_GPU_KEY = "k == 'nvidia.com/gpu' || k.startsWith('nvidia.com/mig-')"
GPU_RESOURCES_CEL: Final = (
    f"(has(self.resources.limits) && self.resources.limits.exists(k, {_GPU_KEY}))"
    f" || (has(self.resources.requests) && self.resources.requests.exists(k, {_GPU_KEY}))"
)

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
Quantity = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One ``x-kubernetes-validations`` entry."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    """``"1m30s"`` -> 90.0 (the CRD pattern has already checked the form)."""
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(duration))
