"""``ModelSession`` backed by onnxruntime: the only module that imports it.

Called from ``startup`` to load the model, from its file or (decrypted) from memory; the batcher
then calls ``run`` from its executor threads (``InferenceSession.run`` releases the GIL and is
thread-safe).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnxruntime as ort

from modelyard_runtime.datatypes import DATATYPE_BY_ORT, TensorSpec
from modelyard_runtime.errors import StartupError
from modelyard_runtime.session import Array, DescribedSession, onnx_file, providers

log = logging.getLogger(__name__)


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in (arg.shape or ()))
    datatype = DATATYPE_BY_ORT.get(arg.type)
    if datatype is None:
        raise StartupError("load", f"{arg.name!r} has type {arg.type}, which cannot be served")
    return TensorSpec(name=arg.name, datatype=datatype, shape=shape)


class OnnxSession(DescribedSession):
    """A loaded onnxruntime session and what it serves."""

    def __init__(self, session: Any, opset: int) -> None:
        active: str = session.get_providers()[0]
        super().__init__(
            inputs=[_spec(arg) for arg in session.get_inputs()],
            outputs=[_spec(arg) for arg in session.get_outputs()],
            execution_provider=providers.SHORT_NAMES.get(active, active),
            opset=opset,
        )
        self._session = session
        self._output_names = [spec.name for spec in self.outputs]

    def run(self, feeds: Mapping[str, Array]) -> list[Array]:
        result: list[Array] = self._session.run(self._output_names, dict(feeds))
        return result


def _session_options(intra_op_threads: int, memory_arena: bool) -> Any:
    options = ort.SessionOptions()
    # Without the arena, a huge batch's buffers go back to the allocator when it ends; with it,
    # the process keeps the largest batch's memory for life. Off costs a few µs a batch
    # (hack/bench_arena.py, docs/runtime.md).
    options.enable_cpu_mem_arena = memory_arena
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    # The event loop shares the cores: spinning workers would take its CPU for nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def load(
    path: Path, *, execution_provider: str, intra_op_threads: int, memory_arena: bool = False
) -> OnnxSession:
    """Load ``path``; ``StartupError`` with stage ``load`` or ``provider`` says what failed."""
    if not path.is_file():
        raise StartupError("load", f"model file {path} does not exist")
    try:
        header = onnx_file.read_header(path)
    except (onnx_file.NotOnnxError, OSError) as e:
        raise StartupError("load", f"{path} is not an ONNX model: {e}") from e
    options = _session_options(intra_op_threads, memory_arena)
    return _create(str(path), str(path), header, execution_provider, options)


def load_bytes(
    data: bytes,
    *,
    name: str,
    execution_provider: str,
    intra_op_threads: int,
    memory_arena: bool = False,
) -> OnnxSession:
    """Load a model held in memory (a decrypted one: it never touches a disk); ``name`` is how
    messages call it. Stages as for ``load``."""
    try:
        header = onnx_file.parse_header(data)
    except onnx_file.NotOnnxError as e:
        raise StartupError("load", f"{name} is not an ONNX model: {e}") from e
    options = _session_options(intra_op_threads, memory_arena)
    return _create(data, name, header, execution_provider, options)


def _create(
    model: str | bytes,
    name: str,
    header: onnx_file.OnnxHeader,
    execution_provider: str,
    options: Any,
) -> OnnxSession:
    """An InferenceSession for ``model`` (a path or the model's bytes) on the planned providers."""
    gpu = execution_provider != "cpu" and providers.gpu_present()
    plan = providers.plan_providers(
        execution_provider, gpu=gpu, available=ort.get_available_providers()
    )
    if plan.note:
        log.warning("execution provider: %s; using the CPU", plan.note)
    if providers.CUDA in plan.providers and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    # Only TensorRT writes (its engine cache): asking for a temp dir otherwise fails on a
    # read-only root filesystem with no /tmp volume. A model loaded from memory gets no cache.
    cache_dir = ""
    if providers.TENSORRT in plan.providers and isinstance(model, str):
        cache_dir = os.environ.get("MODELYARD_TRT_CACHE_DIR") or tempfile.gettempdir()
    try:
        session = ort.InferenceSession(
            model, sess_options=options, providers=plan.with_options(cache_dir)
        )
    except Exception as e:
        if plan.providers == (providers.CPU,):
            raise StartupError("load", f"onnxruntime cannot load {name}: {e}") from e
        try:
            ort.InferenceSession(model, sess_options=options, providers=[providers.CPU])
        except Exception as cpu_error:
            raise StartupError("load", f"onnxruntime cannot load {name}: {cpu_error}") from e
        raise StartupError("provider", f"{', '.join(plan.providers[:-1])} failed: {e}") from e
    return OnnxSession(session, header.default_opset)
