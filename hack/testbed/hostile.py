"""Hostile HTTP clients for a runtime server process: raw sockets that lie, stall, bomb and
disconnect, a health poller, and the process's RSS.

Used by ``tests/integration/test_hostile.py`` (which asserts) and ``hack/bench_hostile.py``
(which prints the table in RELIABILITY.md). Every case is a function of the server's address that
returns an ``Outcome``: the status (None when the server answered nothing), the JSON error
message if any, and how long it took. Nothing here sleeps to synchronise: a stalled client waits
on the server's answer with a socket timeout.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import socket
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import orjson

from hack.testbed.processes import RuntimeProcess

TOKEN: Final = "hostile-token"
AUTH: Final = f"Authorization: Bearer {TOKEN}\r\n".encode()
JSON_TYPE: Final = b"Content-Type: application/json\r\n"


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: int | None  # None: the server answered nothing before the connection ended
    error: str | None  # the JSON error body's message
    json_error: bool  # the answer had the JSON error body (or was a 2xx)
    seconds: float
    body: bytes = b""
    head: bytes = b""  # the status line and headers


@dataclasses.dataclass(frozen=True)
class Case:
    category: str
    name: str
    expected: tuple[int | None, ...]  # statuses that are right (None: no answer is right)
    run: Callable[[str, int], Outcome]


def tiny_body(rows: int = 1, *, value: Any = 1.0) -> bytes:
    """A v2 infer request of ``rows`` rows for the tiny model (x: FP32 [-1, 4])."""
    data = [value] * (rows * 4)
    return orjson.dumps(
        {"inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": data}]}
    )


def request_head(
    path: str = "/v2/models/tiny/infer",
    *,
    length: int | None = None,
    extra: bytes = b"",
    auth: bytes = AUTH,
    content_type: bytes = JSON_TYPE,
) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: runtime\r\n".encode() + auth + content_type + extra
    if length is not None:
        head += f"Content-Length: {length}\r\n".encode()
    return head + b"\r\n"


def read_response(sock: socket.socket) -> tuple[int | None, bytes, bytes]:
    """(status, head, body) of one response; status None if the connection ended first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, head, body


def outcome(status: int | None, head: bytes, body: bytes, started: float) -> Outcome:
    error, json_error = None, False
    if status is not None:
        is_json = b"application/json" in head.lower()
        if status < 300:
            json_error = True
        elif is_json:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                payload = None
            if isinstance(payload, dict) and set(payload) == {"error"}:
                error, json_error = str(payload["error"]), True
    return Outcome(status, error, json_error, time.monotonic() - started, body, head)


def exchange(
    address: tuple[str, int],
    parts: list[bytes],
    *,
    timeout: float = 30.0,
    pause: float = 0.0,
    close_early: bool = False,
) -> Outcome:
    """Send ``parts`` (``pause`` seconds apart) on a new connection and read one answer."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            for index, part in enumerate(parts):
                if index and pause:
                    time.sleep(pause)  # a slow client: the pause is the behaviour under test
                sock.sendall(part)
            if close_early:
                sock.shutdown(socket.SHUT_RDWR)
                return Outcome(None, None, True, time.monotonic() - started)
            status, head, body = read_response(sock)
        except (ConnectionResetError, BrokenPipeError):
            return Outcome(None, None, False, time.monotonic() - started)
        except TimeoutError:
            return Outcome(None, None, False, time.monotonic() - started)
    return outcome(status, head, body, started)


def json_request(
    address: tuple[str, int], method: str, path: str, body: bytes | None = None, **headers: str
) -> Outcome:
    started = time.monotonic()
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        all_headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        all_headers.update(headers)
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        head = "\r\n".join(f"{k}: {v}" for k, v in response.getheaders()).encode()
        return outcome(response.status, head, data, started)
    finally:
        connection.close()


class HealthPoller:
    """Polls ``/v2/health/ready`` on new connections from a thread; keeps the slowest answer."""

    def __init__(self, address: tuple[str, int], period: float = 0.05) -> None:
        self.address = address
        self.period = period
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def _poll(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            connection = http.client.HTTPConnection(*self.address, timeout=10)
            try:
                connection.request("GET", "/v2/health/ready")
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    self.failures.append(f"status {response.status}")
            except OSError as e:
                self.failures.append(repr(e))
            finally:
                connection.close()
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(self.period)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children_rss_mib(pid: int) -> float:
    """The RSS of the process's children (and theirs), summed."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():  # a thread's children are listed by it
        for child in (task / "children").read_text().split():
            total += rss_mib(int(child)) + children_rss_mib(int(child))
    return total


def rss_falls_below(pid: int, bound: float, *, within: float = 5.0) -> float:
    """The RSS as soon as it is under ``bound`` MiB, or the last one after ``within`` seconds."""
    deadline = time.monotonic() + within
    while (rss := rss_mib(pid)) >= bound and time.monotonic() < deadline:
        time.sleep(0.1)  # polling memory against a deadline
    return rss


def settled_rss_mib(pid: int, *, within: float = 5.0) -> float:
    """The RSS once it stops falling (the server trims its heap a second after a large body):
    the lowest of ten samples over ``within`` seconds."""
    lowest = rss_mib(pid)
    for _ in range(10):
        time.sleep(within / 10)  # sampling memory over time, not synchronising
        lowest = min(lowest, rss_mib(pid))
    return lowest


# -- the cases ------------------------------------------------------------------------------

INFER: Final = "/v2/models/tiny/infer"


def _send(parts: list[bytes], **kwargs: Any) -> Callable[[str, int], Outcome]:
    def run(host: str, port: int) -> Outcome:
        return exchange((host, port), parts, **kwargs)

    return run


def _gzip_bomb(size: int) -> bytes:
    return gzip.compress(bytes(size), compresslevel=9)


def _deflate_bomb(size: int) -> bytes:
    return zlib.compress(bytes(size), 9)


def _endless_chunks(host: str, port: int) -> Outcome:
    """A chunked body that never ends: a chunk every 50 ms until the server answers."""
    started = time.monotonic()
    head = request_head(extra=b"Transfer-Encoding: chunked\r\n")
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(head + b"1\r\n[\r\n")
        sock.settimeout(0.05)
        while time.monotonic() - started < 60:
            try:
                sock.sendall(b"2\r\n1,\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                peek = sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                continue
            if peek:
                break
        sock.settimeout(10)
        status, head_bytes, body = read_response(sock)
    return outcome(status, head_bytes, body, started)


def _shorter_length(host: str, port: int) -> Outcome:
    """Content-Length shorter than the body: the first answer (400: the JSON is cut off)."""
    body = tiny_body()
    return exchange((host, port), [request_head(length=len(body) // 2) + body], timeout=10)


def _post(body: bytes, extra: bytes = b"", **head: Any) -> Callable[[str, int], Outcome]:
    """A request with a true Content-Length, ``extra`` headers and ``body``."""
    return _send([request_head(length=len(body), extra=extra, **head) + body])


def cases(body_timeout: float) -> list[Case]:
    """Every hostile case for a server on the tiny model with auth on, the default limits and
    ``body_timeout`` seconds to receive a body."""
    big_rows = 2_000_000  # 32 MB of JSON, 2 M rows: over the rows limit
    huge = tiny_body(big_rows)
    ok = tiny_body()
    half = ok[: len(ok) // 2]
    slow = 0.3 * body_timeout / len(ok)
    wait = body_timeout + 10
    gz, deflate = b"Content-Encoding: gzip\r\n", b"Content-Encoding: deflate\r\n"
    chunked = b"Transfer-Encoding: chunked\r\n"
    big_shape = ok.replace(b"[1,4]", b"[4611686018427387904,4611686018427387904]")
    not_numbers = ok.replace(b"[1.0,1.0,1.0,1.0]", b'[null,"1.5","NaN",1]')
    tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)
    return [
        Case("bombs", "gzip bomb (200 MiB of zeros in 200 KiB)", (413,),
             _post(_gzip_bomb(200 << 20), gz)),
        Case("bombs", "deflate bomb (100 MiB of zeros)", (413,),
             _post(_deflate_bomb(100 << 20), deflate)),
        Case("bombs", "JSON nested 100,000 deep", (400,),
             _post(b"[" * 100_000 + b"]" * 100_000)),
        Case("bombs", "shape of 2**62 x 2**62 with 4 values", (400,), _post(big_shape)),
        Case("bombs", "Content-Length over the limit (1 GiB announced)", (413,),
             _send([request_head(length=1 << 30) + ok])),
        Case("lies", "Content-Length longer than the body", (408,),
             _send([request_head(length=len(ok) + 100) + ok], timeout=wait)),
        Case("lies", "Content-Length shorter than the body", (400,), _shorter_length),
        Case("lies", "Content-Length not a number", (400,),
             _send([request_head(extra=b"Content-Length: ten\r\n") + ok])),
        Case("lies", "Content-Length and Transfer-Encoding both", (400,), _post(ok, chunked)),
        Case("lies", "chunk size not hex", (400,),
             _send([request_head(extra=chunked) + b"zz\r\n" + ok])),
        Case("lies", "Content-Type text/plain", (415,),
             _post(ok, content_type=b"Content-Type: text/plain\r\n")),
        Case("lies", "Content-Type JSON, body binary", (400,), _post(bytes(range(64)))),
        Case("lies", "Content-Encoding gzip, body plain", (400,), _post(ok, gz)),
        Case("lies", "Content-Encoding br", (415,), _post(ok, b"Content-Encoding: br\r\n")),
        Case("lies", "Inference-Header-Content-Length past the body", (400,),
             _post(ok, b"Inference-Header-Content-Length: 99999\r\n")),
        Case("lies", "null and numeric strings in FP32 data", (400,), _post(not_numbers)),
        Case("lies", "Authorization not UTF-8", (401,),
             _post(ok, auth=b"Authorization: Bearer \xff\xfe\xfd\r\n")),
        Case("lies", "Authorization not UTF-8 on metadata", (401,),
             _send([b"GET /v2/models/tiny HTTP/1.1\r\nHost: r\r\n"
                    b"Authorization: Bearer \xc3\x28\r\n\r\n"])),
        Case("lies", "header line over 8 KiB", (400,),
             _post(ok, b"X-Pad: " + b"a" * 9000 + b"\r\n")),
        Case("lies", "TLS handshake on the HTTP port", (400,), _send([tls])),
        Case("slow", "body 1 byte at a time within the timeout", (200,),
             _send([request_head(length=len(ok)), *[bytes([c]) for c in ok]], pause=slow)),
        Case("slow", "body stalled after half", (408,),
             _send([request_head(length=len(ok)) + half], timeout=wait)),
        Case("slow", "disconnect mid-body", (None,),
             _send([request_head(length=len(ok)) + half], close_early=True)),
        Case("never-ending", "chunked body that never ends", (408, 413), _endless_chunks),
        Case("huge", f"valid JSON of {len(huge) >> 20} MiB, {big_rows:,} rows", (413,),
             _send([request_head(length=len(huge)) + huge], timeout=60)),
        Case("huge", "4096 rows (the limit) as JSON", (200,), _post(tiny_body(4096))),
    ]  # fmt: skip


def slow_server(root: Path, *extra: str) -> RuntimeProcess:
    """A runtime process whose model takes 50 ms a request (``tests.support.slow_server``), for
    overload and stalled-client cases."""
    model = root / "any.onnx"
    model.write_bytes(b"")
    return RuntimeProcess(
        ["--model", str(model), "--name", "tiny", "--processes", "1", "--warmup", "none",
         "--compute-seconds", "0.05", *extra],
        module="tests.support.slow_server",
    )  # fmt: skip
