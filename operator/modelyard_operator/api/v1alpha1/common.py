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


_QUANTITY_SUFFIX: Final = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_QUANTITY_PARTS = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[A-Za-z]*)$"
)


def quantity_value(quantity: int | str) -> float:
    """A Kubernetes quantity as a number: ``"250m"`` -> 0.25, ``"1Ki"`` -> 1024.0, ``4`` -> 4.0.
    Raises ``ValueError`` on anything else."""
    if isinstance(quantity, int):
        return float(quantity)
    match = _QUANTITY_PARTS.match(quantity.strip())
    if match is None or not re.match(QUANTITY_PATTERN, quantity.strip()):
        raise ValueError(f"{quantity!r} is not a quantity")
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return float(number + suffix)
    return float(number) * _QUANTITY_SUFFIX[suffix]
