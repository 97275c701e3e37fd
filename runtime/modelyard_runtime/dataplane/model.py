"""The served model as every protocol sees it: its name, its tensors, its metadata.

``ServedModel.of`` builds it once from the loaded model and the settings; the data plane and the
transports read it on every request, so lookups are precomputed here. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from modelyard_runtime.dataplane.metadata import ModelMetadata, describe_model
from modelyard_runtime.datatypes import TensorSpec
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.session import ModelSession


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServedModel:
    name: str
    version: str
    session: ModelSession
    inputs: Mapping[str, TensorSpec]  # by name: what the codecs check requests against
    outputs: tuple[TensorSpec, ...]  # in the session's order
    metadata: ModelMetadata
    _output_index: Mapping[str, int]

    @classmethod
    def of(cls, *, name: str, version: str, session: ModelSession, sha256: str) -> ServedModel:
        outputs = tuple(session.outputs)
        return cls(
            name=name,
            version=version,
            session=session,
            inputs={spec.name: spec for spec in session.inputs},
            outputs=outputs,
            metadata=describe_model(
                name=name,
                version=version,
                inputs=tuple(session.inputs),
                outputs=outputs,
                execution_provider=session.execution_provider,
                sha256=sha256,
                opset=session.opset,
            ),
            _output_index={spec.name: index for index, spec in enumerate(outputs)},
        )

    def select_outputs(self, names: Sequence[str] | None) -> Sequence[int]:
        """Indices of the outputs to return, in the order asked for; None: every output."""
        if names is None:
            return range(len(self.outputs))
        index = self._output_index
        try:
            return [index[name] for name in names]
        except KeyError as e:
            known = ", ".join(spec.name for spec in self.outputs)
            raise InvalidInputError(
                f"unknown output {e.args[0]!r}; the model's outputs are: {known}"
            ) from None
