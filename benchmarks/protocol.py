"""Worker processes and their channel: one JSON request per line in, one reply per line out.

Each framework's contenders run in a worker process of their own (`python -m benchmarks.workers
KIND`), so that only one computes at a time and PyTorch can run under a different Python. Top-level
imports are stdlib only: the PyTorch worker's Python has no Keras or absl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROTOCOL_PREFIX = "@@bench "


class BenchmarkError(RuntimeError):
    """A worker or a measured program failed."""


def serve_requests(handlers: dict[str, Callable[[dict], dict]]) -> None:
    """Answer requests read from stdin; replies go to the real stdout, everything else to stderr."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (progress bars, C++ logs) must not corrupt the protocol
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            reply = handlers[request["op"]](request)
        except Exception:  # reported to the orchestrator, which raises it
            reply = {"error": traceback.format_exc()}
        replies.write(PROTOCOL_PREFIX + json.dumps(reply) + "\n")
        replies.flush()


def timed(run: Callable[[], None], count: int, sync: Callable[[], None]) -> float:
    """Seconds that `count` calls of `run` take, `sync` waiting for the last to finish."""
    start = time.perf_counter()
    for _ in range(count):
        run()
    sync()
    return time.perf_counter() - start


class Worker:
    """A worker process and its request/reply channel."""

    def __init__(self, name: str, python: str, kind: str, config: dict, env: dict[str, str]):
        self.name = name
        self.process = subprocess.Popen(
            [python, "-m", "benchmarks.workers", kind], cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._send(config)

    def _send(self, message: dict) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def call(self, op: str, **request: Any) -> dict:
        self._send(dict(request, op=op))
        for line in self.process.stdout:
            if line.startswith(PROTOCOL_PREFIX):
                reply = json.loads(line[len(PROTOCOL_PREFIX):])
                if "error" in reply:
                    raise BenchmarkError(f"{self.name} worker, {op} {request}:\n{reply['error']}")
                return reply
        raise BenchmarkError(f"{self.name} worker exited with code {self.process.wait()} during "
                             f"{op} {request} (its stderr is above)")

    def close(self) -> None:
        if self.process.poll() is None:
            self._send({"op": "quit"})
            self.process.stdin.close()
            self.process.wait(timeout=60)


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def keras_worker(name: str, backend: str, inter_op_threads: int, intra_op_threads: int,
                 **env: str) -> Worker:
    """A Keras worker process on `backend` with TensorFlow's thread counts (0: its default) and
    extra environment variables."""
    return Worker(name, sys.executable, "keras",
                  {"backend": backend, "inter_op_threads": inter_op_threads,
                   "intra_op_threads": intra_op_threads},
                  worker_env(KERAS_BACKEND=backend, **env))


def find_torch_python(candidates: list[str]) -> tuple[str | None, str]:
    """The first Python that imports torch and torchvision, and a note saying which or why none."""
    tried = []
    for python in candidates:
        if not python or not shutil.which(python):
            tried.append(f"{python or '(empty)'}: not found")
            continue
        probe = subprocess.run([python, "-c", "import torch, torchvision"], check=False,
                               capture_output=True, text=True)
        if probe.returncode == 0:
            return python, f"PyTorch from {python}"
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr else "fails"
        tried.append(f"{python}: {reason}")
    return None, "PyTorch absent: " + "; ".join(tried)

