"""Startup stages before Ready: verify the digest, decrypt, load the model, warm it up.

An encrypted model (``Settings.model_key_file``, ``contract.sealing``) is decrypted into memory
and its session created from those bytes: the plaintext is never written to a disk.

``prepare`` runs in a worker thread while the HTTP server already answers liveness; any failure
is a ``StartupError`` whose ``stage: reason`` line ``write_termination_log`` puts where Kubernetes
reads it, so the operator can show the stage within seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from modelyard_runtime.contract import sealing
from modelyard_runtime.contract.digest import sha256_file
from modelyard_runtime.contract.names import Stage
from modelyard_runtime.cpus import cpu_limit
from modelyard_runtime.errors import StartupError
from modelyard_runtime.metrics import RuntimeMetrics
from modelyard_runtime.session import ModelSession, warmup_feeds
from modelyard_runtime.settings import Settings

log = logging.getLogger(__name__)

Loader = Callable[[Path, Settings], ModelSession]
BytesLoader = Callable[[bytes, Path, Settings], ModelSession]


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedModel:
    session: ModelSession
    sha256: str

    @property
    def properties(self) -> dict[str, str | int]:
        """What model metadata reports (REST ``parameters``, gRPC ``properties``)."""
        return {
            "execution_provider": self.session.execution_provider,
            "sha256": self.sha256,
            "opset": self.session.opset,
        }


def load_onnx(path: Path, settings: Settings) -> ModelSession:
    from modelyard_runtime.session import onnx  # onnxruntime is imported only when serving

    threads = intra_op_threads(settings)
    log.info("intra-op threads: %s", threads or "onnxruntime's default")
    return onnx.load(
        path,
        execution_provider=settings.execution_provider,
        intra_op_threads=threads,
        memory_arena=settings.cpu_memory_arena,
    )


def load_onnx_bytes(data: bytes, path: Path, settings: Settings) -> ModelSession:
    from modelyard_runtime.session import onnx

    threads = intra_op_threads(settings)
    log.info("intra-op threads: %s", threads or "onnxruntime's default")
    return onnx.load_bytes(
        data,
        name=f"{path} (decrypted in memory)",
        execution_provider=settings.execution_provider,
        intra_op_threads=threads,
        memory_arena=settings.cpu_memory_arena,
    )


def decrypt_model(path: Path, key_file: str) -> bytes:
    """The plaintext of the encrypted model at ``path``, in memory; stage ``decrypt`` if not."""
    try:
        key = sealing.parse_key(Path(key_file).read_bytes())
    except OSError as e:
        raise StartupError("decrypt", f"cannot read the model key {key_file}: {e}") from e
    except sealing.SealError as e:
        raise StartupError("decrypt", f"the model key {key_file} is unusable: {e}") from e
    try:
        with path.open("rb") as source:
            return sealing.decrypt(source, key)
    except OSError as e:
        raise StartupError("decrypt", f"cannot read {path}: {e}") from e
    except sealing.SealError as e:
        raise StartupError("decrypt", f"cannot decrypt {path}: {e}") from e


def _refuse_sealed(path: Path) -> None:
    """An encrypted model without a key: say so, rather than 'not an ONNX model'."""
    try:
        with path.open("rb") as f:
            head = f.read(len(sealing.MAGIC))
    except OSError:
        return  # the loader reports it
    if sealing.is_sealed(head):
        raise StartupError(
            "decrypt",
            f"{path} is an encrypted model but no key is configured "
            "(spec.model.encryption, MODELYARD_MODEL_KEY_FILE)",
        )


def intra_op_threads(settings: Settings) -> int:
    """The setting; when it is 0, the pod's CPU limit if it has one, else 0 (onnxruntime's own
    default: the node's physical cores, which would oversubscribe a limited pod)."""
    return settings.intra_op_threads or cpu_limit() or 0


def prepare(
    settings: Settings,
    metrics: RuntimeMetrics,
    *,
    loader: Loader = load_onnx,
    bytes_loader: BytesLoader = load_onnx_bytes,
) -> LoadedModel:
    """Verify, decrypt, load and warm up the model; ``StartupError`` names the failing stage."""
    path = Path(settings.model_path)
    started = time.perf_counter()
    if not path.is_file():
        raise StartupError("load", f"model file {path} does not exist")
    try:
        digest = sha256_file(path)
    except OSError as e:
        raise StartupError("load", f"cannot read {path}: {e}") from e
    if settings.model_sha256 and digest != settings.model_sha256:
        raise StartupError(
            "verify", f"sha256 of {path} is {digest}, expected {settings.model_sha256}"
        )
    metrics.stage_took("verify", time.perf_counter() - started)

    started = time.perf_counter()
    if settings.model_key_file:
        plaintext = decrypt_model(path, settings.model_key_file)
        metrics.stage_took("decrypt", time.perf_counter() - started)
        started = time.perf_counter()
        session = bytes_loader(plaintext, path, settings)
        del plaintext  # onnxruntime holds its own copy
    else:
        _refuse_sealed(path)
        session = loader(path, settings)
    metrics.stage_took("load", time.perf_counter() - started)
    log.info(
        "loaded %s (opset %d) on %s: inputs %s, outputs %s",
        path,
        session.opset,
        session.execution_provider,
        [(s.name, s.datatype, s.shape) for s in session.inputs],
        [(s.name, s.datatype, s.shape) for s in session.outputs],
    )

    started = time.perf_counter()
    batchable = all(spec.batchable for spec in session.inputs)
    for batch_size in settings.warmup if batchable else settings.warmup[:1]:
        try:
            session.run(warmup_feeds(session.inputs, batch_size))
        except Exception as e:
            raise StartupError("warmup", f"batch size {batch_size} failed: {e}") from e
    metrics.stage_took("warmup", time.perf_counter() - started)
    metrics.model_loaded(
        sha256=digest, execution_provider=session.execution_provider, opset=session.opset
    )
    return LoadedModel(session=session, sha256=digest)


def write_termination_log(path: str, line: str) -> None:
    """Write ``line`` (one line, ``stage: reason``) where Kubernetes reads termination messages."""
    if not path:
        return
    text = " ".join(line.split())[:4000]
    try:
        Path(path).write_text(text + "\n", encoding="utf-8")
    except OSError as e:
        log.warning("cannot write the termination log %s: %s", path, e)


def report_fatal(termination_log: str, stage: Stage, message: str) -> None:
    """Log ``message`` and write ``stage: message`` to the termination log."""
    log.error("%s", message)
    write_termination_log(termination_log, f"{stage}: {message}")


def listen_failed(settings: Settings, error: Exception) -> int:
    """Log and record a port that cannot be bound (stage ``listen``); the exit code."""
    ports = f"http {settings.http_port}, grpc {settings.grpc_port}"
    if settings.metrics_port is not None:
        ports += f", metrics {settings.metrics_port}"
    report_fatal(
        settings.termination_log, "listen", f"cannot listen on {settings.host} ({ports}): {error}"
    )
    return 1
