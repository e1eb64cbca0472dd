"""A real uvicorn server on loopback for the tracking tests (in a thread or a process), and the
checks of the server itself: health, the CLI's address line, a clean stop."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from archer.cli import app as cli_app
from archer.config import Settings
from archer.store import inbox, sources, utcnow
from archer.web import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def new_source(ws: Settings, name: str) -> str:
    with ws.session(write=True) as s:
        return sources.create(s, name, now=utcnow())[1]


def inbox_bodies(ws: Settings) -> list[dict]:
    import orjson

    with ws.session() as s:
        return [orjson.loads(r.body) for r in inbox.next_events(s.connection(), 1_000_000)]


class ThreadServer:
    """uvicorn serving the app in a thread of the test process."""

    def __init__(self, ws: Settings, port: int | None = None, sync_every: float | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(
            create_app(ws, sync_every=sync_every),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class ProcessServer:
    """``archer serve`` in its own process, so a test can kill it like a crash would."""

    def __init__(self, ws: Settings, port: int, *, cli: bool = True):
        self.ws, self.port, self.cli = ws, port, cli
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "ARCHER_HOME": str(self.ws.home)}
        if self.cli:
            args = ["archer.cli", "serve", "--port", str(self.port), "--sync-every", "0"]
        else:  # lighter: the app factory straight under uvicorn (it loads every 5 s)
            args = ["uvicorn", "--factory", "archer.web:from_environment", "--port", str(self.port)]
            args += ["--log-level", "warning", "--no-access-log"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"archer serve did not start: {self.proc.stdout.read()!r}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown, no flush — a crash
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def server(ws: Settings):
    with ThreadServer(ws) as srv:
        yield srv


def test_health_answers_without_credentials(server):
    r = httpx.get(server.url + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_the_server_stops_cleanly_with_its_writer(ws):
    key = new_source(ws, "web")
    with ThreadServer(ws) as srv:
        r = httpx.post(
            srv.url + "/v1/track",
            json={"userId": "u1", "event": "Product Viewed", "messageId": "m1"},
            headers=basic(key),
        )
        assert r.status_code == 200
    assert [b["messageId"] for b in inbox_bodies(ws)] == ["m1"]


def test_archer_serve_prints_its_address_and_serves(ws):
    srv = ProcessServer(ws, free_port())
    srv.start()
    try:
        assert httpx.get(srv.url + "/health").json() == {"status": "ok"}
    finally:
        srv.stop()
    printed = srv.proc.stdout.read().decode()
    assert f"http://127.0.0.1:{srv.port}" in printed
    assert str(Path(ws.home).resolve()) in printed


def test_source_commands_create_list_revoke(ws):
    run = CliRunner().invoke
    home = ["--home", str(ws.home)]
    r = run(cli_app, ["source", "create", "web", *home, "--json"])
    assert r.exit_code == 0, r.output
    import json

    made = json.loads(r.stdout)
    assert made["write_key"].startswith("wk_") and made["active"]
    with ws.session() as s:
        assert sources.authenticate(s, made["write_key"]).name == "web"
        stored = sources.all_sources(s)[0]
        assert made["write_key"] not in (stored.key_hash, stored.key_hint)  # only the hash
    again = run(cli_app, ["source", "create", "web", *home])
    assert again.exit_code == 1 and "exists already" in again.stderr
    bad = run(cli_app, ["source", "create", "we b", *home])
    assert bad.exit_code == 1 and "letters, digits" in bad.stderr
    listed = json.loads(run(cli_app, ["source", "list", *home, "--json"]).stdout)
    assert [(x["name"], x["active"]) for x in listed] == [("web", True)]
    assert made["write_key"] not in run(cli_app, ["source", "list", *home]).stdout
    r = run(cli_app, ["source", "revoke", "web", *home])
    assert r.exit_code == 0 and "revoked" in r.stdout
    with ws.session() as s:
        assert sources.authenticate(s, made["write_key"]) is None
    unknown = run(cli_app, ["source", "revoke", "app", *home])
    assert unknown.exit_code == 1 and "no source named 'app'" in unknown.stderr
