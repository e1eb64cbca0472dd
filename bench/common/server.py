"""``archer serve`` on a free loopback port, for the benchmarks that time it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

from common import archer_calls as archer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """``archer serve --home HOME`` with the loader off (``--sync-every 0``), started and
    answering ``/health`` when the constructor returns; ``stop()`` ends it."""

    def __init__(self, home: Path, *, start_timeout: float = 60.0):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = archer.cli("serve", "--port", str(self.port), "--sync-every", "0")
        env = {**os.environ, "ARCHER_HOME": str(home)}
        self.proc = subprocess.Popen(
            [*cmd, "--home", str(home)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"archer serve did not start\n{err[-2000:]}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
