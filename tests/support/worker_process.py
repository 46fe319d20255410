"""A `procrastinate worker` subprocess, as the tests and the benchmarks start it."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to clean up, as when a machine dies."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (graceful shutdown), then SIGKILL if it takes longer than `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode
