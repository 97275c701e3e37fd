"""Runs ``modelyard-runtime`` (or a Python server script) as a real process for tests.

The server is started on port 0; the chosen port is read from its log line. Lines are collected
by a reader thread, and ``wait_for`` polls them against a deadline (no sleeps). Stopped by PID.
No drain delay unless a test asks for one: there are no endpoints to update around a test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")
LISTENING_GRPC = re.compile(r"listening on grpc://([\d.]+):(\d+)")


class RuntimeProcess:
    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        module: str = "modelyard_runtime",
        command: Sequence[str] = ("serve",),
    ) -> None:
        # Never a fixed port: both listeners pick a free one unless a test says otherwise.
        defaults = {
            "MODELYARD_HOST": "127.0.0.1",
            "MODELYARD_HTTP_PORT": "0",
            "MODELYARD_GRPC_PORT": "0",
            "MODELYARD_DRAIN_DELAY_SECONDS": "0",
        }
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **defaults, **(env or {})}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module, *command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.popen.stdout:
            for line in self.popen.stdout:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first log line matching ``pattern``; fails with the log if none comes in time."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                remaining = deadline - time.monotonic()
                exited = self.popen.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or exited:
                    raise AssertionError(f"no log line matches {pattern!r}; log:\n{self.log}")
                self._changed.wait(remaining)

    def url(self, timeout: float = 30.0) -> str:
        match = self.wait_for(LISTENING.pattern, timeout)
        return f"http://{match.group(1)}:{match.group(2)}"

    def grpc_address(self, timeout: float = 30.0) -> str:
        match = self.wait_for(LISTENING_GRPC.pattern, timeout)
        return f"{match.group(1)}:{match.group(2)}"

    def wait_ready(self, timeout: float = 60.0) -> str:
        """The base URL once the server (every process of it) answers Ready."""
        url = self.url(timeout)
        self.wait_for(r"ready: model", timeout)
        deadline = time.monotonic() + timeout
        while not self._ready(url):
            if time.monotonic() > deadline or self.popen.poll() is not None:
                raise AssertionError(f"{url} never answered Ready; log:\n{self.log}")
            time.sleep(0.05)  # polling a starting server against a deadline
        return url

    @staticmethod
    def _ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def terminate(self) -> None:
        self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._reader.join(10)
