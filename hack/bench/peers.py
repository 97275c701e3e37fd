"""How to start each server the benchmark compares, and how to talk to it.

Every server gets the same ONNX file and onnxruntime threads (1), except "modelyard defaults",
which runs with no tuning flag at all (what a user gets: processes and threads from the CPUs).
modelyard runs from the project virtualenv; each peer from its own (``VENVS``), built once and
cached, because their dependencies clash (numpy 2 vs <2, fastapi versions).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "servers"
CACHE = Path(os.environ.get("MODELYARD_CACHE", Path.home() / ".cache" / "modelyard")) / "bench"
ROOT = HERE.parents[1]

# peer -> pip requirements of its virtualenv (onnxruntime pinned to the runtime's version)
VENVS: dict[str, tuple[str, ...]] = {
    "naive-fastapi": ("fastapi==0.121.*", "uvicorn[standard]", "orjson", "onnxruntime==1.31.1"),
    "kserve-0.21.0": ("kserve==0.21.0", "onnxruntime==1.31.1"),
    "mlserver-1.7.1": ("mlserver==1.7.1", "onnxruntime==1.31.1"),
    "pytriton-0.7.0": ("nvidia-pytriton==0.7.0", "onnxruntime==1.31.1", "numpy<2"),
    "bentoml-1.4.39": ("bentoml==1.4.39", "onnxruntime==1.31.1"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def venv_python(name: str | None) -> str:
    """The interpreter for a peer, creating its virtualenv on first use."""
    if name is None:
        return sys.executable
    venv = CACHE / "venvs" / name
    python = venv / "bin" / "python"
    if not (venv / ".ok").exists():
        print(f"creating {venv} (once)", flush=True)
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *VENVS[name]], check=True)
        (venv / ".ok").touch()
    return str(python)


@dataclasses.dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    http: str  # base URL
    grpc: str = ""  # host:port when the server speaks gRPC


@dataclasses.dataclass(frozen=True)
class Peer:
    """A server process and the request kinds it is measured with."""

    name: str
    venv: str | None
    kinds: tuple[str, ...]  # json | binary | grpc | bentoml
    launch: Callable[[str, Path, Path], Launch]  # (python, model, workdir) -> Launch
    ready_path: str = "/v2/health/ready"
    infer_path: str = "/v2/models/mlp/infer"


def _modelyard(workers: int, processes: int = 1) -> Callable[[str, Path, Path], Launch]:
    def launch(python: str, model: Path, workdir: Path) -> Launch:
        http, grpc = free_port(), free_port()
        argv = [
            python, "-m", "modelyard_runtime", "serve", "--model", str(model), "--name", "mlp",
            "--host", "127.0.0.1", "--http-port", str(http), "--grpc-port", str(grpc),
            "--execution-provider", "cpu", "--intra-op-threads", "1", "--max-batch-size", "128",
            "--warmup", "1,64", "--max-queue-size", "4096", "--inference-workers", str(workers),
            "--processes", str(processes),
            "--log-level", "WARNING",
        ]  # fmt: skip
        return Launch(argv, {}, ROOT, f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}")

    return launch


def modelyard_defaults(python: str, model: Path, workdir: Path) -> Launch:
    """modelyard with no tuning flags: only where the model is and where to listen."""
    http, grpc = free_port(), free_port()
    argv = [
        python, "-m", "modelyard_runtime", "serve", "--model", str(model), "--name", "mlp",
        "--host", "127.0.0.1", "--http-port", str(http), "--grpc-port", str(grpc),
        "--log-level", "WARNING",
    ]  # fmt: skip
    return Launch(argv, {}, ROOT, f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}")


def _script(script: str, ports: int) -> Callable[[str, Path, Path], Launch]:
    def launch(python: str, model: Path, workdir: Path) -> Launch:
        numbers = [free_port() for _ in range(ports)]
        argv = [python, str(SERVERS / script), str(model), *map(str, numbers)]
        env = {"PYTHONPATH": str(SERVERS)}
        if script.startswith("pytriton"):  # its stub must find this interpreter's libpython
            env["LD_LIBRARY_PATH"] = str(sysconfig.get_config_var("LIBDIR"))
        return Launch(argv, env, SERVERS, f"http://127.0.0.1:{numbers[0]}")

    return launch


def _mlserver(python: str, model: Path, workdir: Path) -> Launch:
    http, grpc, metrics = free_port(), free_port(), free_port()
    root = workdir / "mlserver"
    (root / "mlp").mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(
        f'{{"host": "127.0.0.1", "http_port": {http}, "grpc_port": {grpc}, '
        f'"metrics_port": {metrics}, "parallel_workers": 0}}'
    )
    (root / "mlp" / "model-settings.json").write_text(
        '{"name": "mlp", "implementation": "mlserver_runtime.OnnxRuntime",'
        f' "parameters": {{"uri": "{model}"}}}}'
    )
    mlserver = str(Path(python).parent / "mlserver")
    env = {"PYTHONPATH": str(SERVERS)}
    return Launch([mlserver, "start", str(root)], env, root, f"http://127.0.0.1:{http}")


def _bentoml(python: str, model: Path, workdir: Path) -> Launch:
    port = free_port()
    bentoml = str(Path(python).parent / "bentoml")
    argv = [bentoml, "serve", "bentoml_service:Mlp", "--host", "127.0.0.1", "--port", str(port)]
    env = {"PYTHONPATH": str(SERVERS), "BENCH_MODEL": str(model)}
    return Launch(argv, env, SERVERS, f"http://127.0.0.1:{port}")


PEERS: tuple[Peer, ...] = (
    Peer("modelyard defaults", None, ("json", "binary", "grpc"), modelyard_defaults),
    Peer("modelyard", None, ("json", "binary", "grpc"), _modelyard(1)),
    Peer("modelyard, 2 workers", None, ("json", "binary", "grpc"), _modelyard(2)),
    Peer("modelyard, 2 processes", None, ("json", "binary"), _modelyard(1, 2)),  # ghz: 1 conn.
    Peer("naive aiohttp+orjson", None, ("json",), _script("naive_aiohttp.py", 1)),
    Peer("naive FastAPI", "naive-fastapi", ("json",), _script("naive_fastapi.py", 1)),
    Peer("KServe 0.21.0", "kserve-0.21.0", ("json",), _script("kserve_server.py", 2)),
    Peer("MLServer 1.7.1", "mlserver-1.7.1", ("json",), _mlserver),
    Peer(
        "PyTriton 0.7.0",
        "pytriton-0.7.0",
        ("json",),
        _script("pytriton_server.py", 3),
        "/v2/models/mlp/ready",  # the server is ready before the model is bound
    ),
    Peer("BentoML 1.4.39", "bentoml-1.4.39", ("bentoml",), _bentoml, "/readyz", "/predict"),
)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling a starting server, not synchronising a test
    raise RuntimeError(f"{url} never ready")
