"""The processes a benchmark starts (servers, workers, load generators): each in its own process
group with its output in a log file, all stopped in reverse order in a `finally`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Every process the benchmark starts, each in its own process group; stopped in reverse."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.started.append((name, proc))
        return proc

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.started}

    def running(self, name: str) -> bool:
        return any(n == name and p.poll() is None for n, p in self.started)

    def stop_all(self) -> None:
        for name, proc in reversed(self.started):
            self.stop(proc, name)

    def stop(self, proc: subprocess.Popen[bytes], name: str = "") -> None:
        """SIGTERM to the process group, then SIGKILL to what is left; safe to call twice."""
        # SIGTERM: gunicorn and db_worker stop gracefully (the job was cancelled before).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in 30 s: killing its process group")
        # Whatever is left in the group (a gunicorn worker, a straggler) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            print(f"  {name} (pid {proc.pid}) still there after SIGKILL")
