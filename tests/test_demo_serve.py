"""`archer demo --serve` (what `make demo` runs) ends by serving the app, and the printed
sign-in works (issue 6)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_serves_the_app_and_prints_a_working_sign_in(tmp_path: Path):
    port = _free_port()
    cmd = [sys.executable, "-m", "archer.cli", "demo", "--home", str(tmp_path / "demo"),
           "--customers", "300", "--serve", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "sign in as demo" in line:
                break
        said = "".join(lines)
        m = re.search(
            rf"http://127\.0\.0\.1:{port} — sign in as demo with the password (\S+)\.", said
        )
        assert m, said
        base = f"http://127.0.0.1:{port}"
        browser = {"Accept": "text/html"}
        with httpx.Client(
            base_url=base, follow_redirects=False, timeout=30, headers=browser
        ) as client:
            for _ in range(100):  # uvicorn starts right after the line is printed
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert client.get("/").status_code == 303  # no session: to the sign-in page
            page = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            r = client.post(
                "/login",
                data={"username": "demo", "password": m.group(1), "csrf": csrf, "next": "/"},
                headers={"Origin": base},
            )
            assert r.status_code == 303, r.text
            overview = client.get("/")
            assert overview.status_code == 200 and "Archer demo shop" in overview.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
