"""Hostile clients against real runtime processes; prints the table of RELIABILITY.md.

    python -m hack.bench_hostile

Starts ``modelyard-runtime serve`` on a tiny model (auth on, default limits but a short body
timeout) and runs every case of ``hack.testbed.hostile`` one after another while a thread polls
readiness; then overload (a slow fake model, a small queue, 64 concurrent clients) and SIGTERM
with a client stalled mid-body. Reports what each case answered, the slowest health answer, the
RSS before, at its peak and after, and that the server still answers correctly. Timing varies
with the machine: nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hack.testbed import hostile, onnx_models
from hack.testbed.processes import RuntimeProcess

BODY_TIMEOUT = 3.0
GRACE = 3.0
VERBOSE = False  # print the RSS and the slowest health answer after each case


def main_server(root: Path) -> RuntimeProcess:
    model = onnx_models.tiny_model(root / "tiny.onnx")
    token = root / "token"
    token.write_text(hostile.TOKEN)
    return RuntimeProcess(
        ["--model", str(model), "--processes", "1", "--auth-token-file", str(token),
         "--body-timeout-seconds", str(BODY_TIMEOUT)]
    )  # fmt: skip


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def run_cases(
    url: str, pid: int
) -> tuple[list[tuple[hostile.Case, hostile.Outcome]], dict[str, float]]:
    host, port = address(url)
    results = []
    rss = {"before": hostile.rss_mib(pid), "peak": 0.0}
    cases = hostile.cases(BODY_TIMEOUT)  # built first: building holds this process's GIL
    with hostile.HealthPoller((host, port)) as poller:
        for case in cases:
            results.append((case, case.run(host, port)))
            rss["peak"] = max(rss["peak"], hostile.rss_mib(pid))
            if VERBOSE:
                rss_now, worst = hostile.rss_mib(pid), poller.worst
                print(f"{case.name}: RSS {rss_now:.0f} MiB, slowest health {worst:.3f} s")
    rss["after"] = hostile.rss_mib(pid)
    rss["settled"] = hostile.settled_rss_mib(pid)
    rss["children"] = hostile.children_rss_mib(pid)
    rss["health_max"] = poller.worst
    rss["health_polls"] = len(poller.latencies)
    rss["health_failures"] = len(poller.failures)
    return results, rss


def overload(url: str) -> Counter[object]:
    host, port = address(url)
    body = hostile.tiny_body()

    def one(_: int) -> object:
        result = hostile.json_request((host, port), "POST", hostile.INFER, body)
        return result.status if result.json_error else f"{result.status} (not JSON)"

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        return Counter(pool.map(one, range(256)))


def sigterm_with_stalled_client(process: RuntimeProcess, url: str) -> float:
    """Seconds from SIGTERM to exit while a client holds a half-sent body."""
    host, port = address(url)
    sock = socket.create_connection((host, port))
    body = hostile.tiny_body()
    sock.sendall(hostile.request_head(length=len(body)) + body[:20])
    process.wait_for("ready: model")
    started = time.monotonic()
    process.terminate()
    process.wait(GRACE + 30)
    sock.close()
    return time.monotonic() - started


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = main_server(root)
        try:
            url = server.wait_ready()
            results, numbers = run_cases(url, server.popen.pid)
            after = hostile.json_request(address(url), "POST", hostile.INFER, hostile.tiny_body())
            correct = after.status == 200 and b"[2.0,2.0,2.0,2.0]" in after.body
            errors_logged = sum(" ERROR " in line for line in server.lines)
        finally:
            server.kill()
        slow = hostile.slow_server(root, "--max-batch-size", "1", "--max-queue-size", "8")
        try:
            statuses = overload(slow.wait_ready())
        finally:
            slow.kill()
        stalled = hostile.slow_server(
            root, "--shutdown-grace-seconds", str(GRACE), "--body-timeout-seconds", "60"
        )
        try:
            exit_seconds = sigterm_with_stalled_client(stalled, stalled.wait_ready())
        finally:
            stalled.kill()
    categories = Counter(case.category for case, _ in results)
    wrong = [c.name for c, r in results if r.status not in c.expected or not r.json_error]
    print(
        f"`python -m hack.bench_hostile` on {os.cpu_count()} shared CPUs: one server process, "
        f"the tiny model, token auth, default limits but a {BODY_TIMEOUT:g} s body timeout; "
        "one case after another while a thread polls `/v2/health/ready` every 50 ms. "
        + ", ".join(f"{count} {name}" for name, count in categories.items())
        + f" cases; unexpected answers: {', '.join(wrong) or 'none'}."
    )
    print()
    print("| category | case | answer | JSON error body | seconds |")
    print("|---|---|---|---|---|")
    for case, result in results:
        answer = "none (client gone)" if result.status is None else str(result.status)
        is_error = result.status is not None and result.status >= 400
        json_body = ("yes" if result.json_error else "NO") if is_error else "-"
        print(f"| {case.category} | {case.name} | {answer} | {json_body} | {result.seconds:.2f} |")
    print()
    print(
        f"- readiness: {numbers['health_polls']:.0f} polls, slowest "
        f"{numbers['health_max'] * 1000:.0f} ms, {numbers['health_failures']:.0f} failed"
    )
    print(
        f"- RSS: {numbers['before']:.0f} MiB before, {numbers['peak']:.0f} MiB at the peak "
        f"sampled between cases, {numbers['after']:.0f} MiB right after, "
        f"{numbers['settled']:.0f} MiB settled; child processes left: "
        f"{numbers['children']:.0f} MiB"
    )
    print(f"- after: correct answer {correct}; ERROR log lines: {errors_logged}")
    print(
        "- overload (a fake model of 50 ms a request, batch 1, queue 8; 256 requests, 64 at "
        f"once): {', '.join(f'{n} x {s}' for s, n in sorted(statuses.items(), key=str))}"
    )
    print(
        f"- SIGTERM with a client stalled mid-body, grace {GRACE:g} s: exited 0 after "
        f"{exit_seconds:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
