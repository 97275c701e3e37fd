"""An encrypted model served by a real ``modelyard-runtime`` process: it answers correctly, the
plaintext model is never written to a disk, and a wrong key is a ``decrypt`` stage. Also
``/metrics`` on a port of its own."""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hack.testbed.onnx_models import mlp_model
from hack.testbed.processes import RuntimeProcess
from modelyard_runtime.contract import sealing

pytestmark = pytest.mark.slow


def needles(plaintext: bytes, count: int = 8, width: int = 48) -> list[bytes]:
    """Slices of the model's weights: any file holding the plaintext holds them."""
    step = (len(plaintext) - width) // count
    return [plaintext[len(plaintext) // 4 + i * step // 2 :][:width] for i in range(count)]


def files_under(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        for dirpath, _, names in os.walk(root):
            yield from (Path(dirpath) / name for name in names)


def open_files(pid: int) -> Iterator[Path]:
    """The regular files a process has open."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        links = list(fd_dir.iterdir())
    except OSError:
        return
    for link in links:
        try:
            target = Path(os.readlink(link))
        except OSError:
            continue
        if target.is_absolute() and target.is_file():
            yield target


def holding(paths: Iterable[Path], marks: list[bytes]) -> set[Path]:
    found = set()
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue  # gone meanwhile, or not readable
        if any(mark in data for mark in marks):
            found.add(path)
    return found


@pytest.fixture
def encrypted(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(plaintext model outside the pod's dirs, encrypted model, key file)."""
    (tmp_path / "outside").mkdir()
    plain = mlp_model(tmp_path / "outside" / "mlp.onnx", (64, 256, 10), seed=7)
    pod = tmp_path / "pod"
    (pod / "models").mkdir(parents=True)
    (pod / "secret").mkdir()
    key = sealing.generate_key()
    (pod / "secret" / "key").write_bytes(sealing.encode_key(key))
    with plain.open("rb") as source, (pod / "models" / "model.onnx").open("wb") as sink:
        sealing.encrypt(source, sink, key)
    return plain, pod / "models" / "model.onnx", pod / "secret" / "key"


def test_encrypted_model_serves_and_its_plaintext_never_touches_a_disk(
    encrypted: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    plain, model, key_file = encrypted
    marks = needles(plain.read_bytes())
    assert marks
    assert not holding([model, key_file], marks)  # the marks really are the plaintext's
    assert holding([plain], marks) == {plain}
    scratch = tmp_path / "pod" / "tmp"
    scratch.mkdir()
    process = RuntimeProcess(
        ["--model", str(model), "--model-key-file", str(key_file), "--name", "mlp",
         "--termination-log", str(tmp_path / "pod" / "termination-log")],
        env={"TMPDIR": str(scratch)},
    )  # fmt: skip
    seen: set[Path] = set()
    loaded = threading.Event()

    def watch() -> None:  # during the load: the pod's dirs, and whatever the process has open
        while not loaded.is_set():
            seen.update(holding([*files_under([tmp_path / "pod"]),
                                 *open_files(process.popen.pid)], marks))  # fmt: skip

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        url = process.wait_ready()
        loaded.set()
        watcher.join(30)
        after = holding([*files_under([tmp_path / "pod"]), *open_files(process.popen.pid)], marks)
        assert not seen, f"plaintext found while loading in {seen}"
        assert not after, f"plaintext found after loading in {after}"
        row = np.arange(64, dtype=np.float32).reshape(1, 64) / 64
        body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                            "data": row.ravel().tolist()}]}  # fmt: skip
        request = urllib.request.Request(
            f"{url}/v2/models/mlp/infer", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            served = json.load(response)["outputs"][0]["data"]
        expected = ort.InferenceSession(str(plain)).run(None, {"input": row})[0]
        assert np.allclose(served, expected.ravel(), atol=1e-5)
        assert "decrypted in memory" not in process.log  # nothing went wrong on the way
    finally:
        loaded.set()
        process.terminate()
        assert process.wait() == 0, process.log
    assert not holding(files_under([tmp_path / "pod"]), marks)


def test_wrong_key_is_a_decrypt_stage(encrypted: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, model, key_file = encrypted
    key_file.write_bytes(sealing.encode_key(sealing.generate_key()))
    log = tmp_path / "termination-log"
    process = RuntimeProcess(["--model", str(model), "--model-key-file", str(key_file),
                              "--termination-log", str(log)])  # fmt: skip
    try:
        assert process.wait(60) == 1, process.log
    finally:
        process.kill()
    assert log.read_text().startswith(f"decrypt: cannot decrypt {model}: wrong key: ")


def test_metrics_on_a_port_of_their_own(models: dict[str, Path]) -> None:
    process = RuntimeProcess(["--model", str(models["tiny"]), "--metrics-port", "0"])
    try:
        url = process.wait_ready()
        match = process.wait_for(r"listening on metrics (http://[\d.]+:\d+)/metrics")
        with urllib.request.urlopen(match.group(1) + "/metrics", timeout=10) as response:
            text = response.read().decode()
        assert re.search(r"^modelyard_model_info\{.*\} 1\.0$", text, re.MULTILINE)
        with pytest.raises(urllib.error.HTTPError) as on_http:
            urllib.request.urlopen(url + "/metrics", timeout=10)
        on_http.value.close()
        assert on_http.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as inference_on_metrics:
            urllib.request.urlopen(match.group(1) + "/v2/models/tiny", timeout=10)
        inference_on_metrics.value.close()
        assert inference_on_metrics.value.code == 404
    finally:
        process.terminate()
        assert process.wait() == 0, process.log
