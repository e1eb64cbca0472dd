"""Jobs outlive the process that ran them: a restarted process lists them, and one left
running by a process that died is marked interrupted when the next of its kind starts."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from archer.clock import ManualClock
from archer.errors import Conflict
from archer.jobs import Jobs
from archer.store import jobs as rows
from support import workspace

START = "2026-11-01T00:00:00+00:00"


@pytest.fixture
def ws(tmp_path):
    return workspace(tmp_path / "shop", ManualClock(START))


def test_a_restarted_process_lists_the_jobs_of_the_one_before(ws):
    Jobs(ws).run("build", lambda report: {"customers": 3}, who="ana")
    again = Jobs(ws)  # a new process's view: nothing live, everything from the store
    (doc,) = again.recent("build")
    assert doc["state"] == "done" and doc["started_by"] == "ana"
    assert doc["result"] == {"customers": 3}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_job_whose_process_died_is_marked_interrupted_when_the_next_starts(ws):
    import socket

    now = ws.now()
    with ws.session(write=True) as s:
        s.add(rows.JobRow(id="dead", kind="build", state="running", started_by="bob",
                          started_at=now, heartbeat_at=now,
                          owner=f"{socket.gethostname()}:{_dead_pid()}", params="{}",
                          progress="{}"))  # fmt: skip
    doc = Jobs(ws).run("build", lambda report: {}, who="ana")
    assert doc["state"] == "done"
    old = Jobs(ws).get("dead")
    assert old["state"] == "interrupted" and "stopped" in old["error"]


def test_a_job_of_another_host_counts_as_dead_only_when_its_heartbeat_is_stale(ws):
    now = ws.now()
    with ws.session(write=True) as s:
        s.add(rows.JobRow(id="far", kind="build", state="running", started_by="bob",
                          started_at=now, heartbeat_at=now, owner="elsewhere:123",
                          params="{}", progress="{}"))  # fmt: skip
    with pytest.raises(Conflict):
        Jobs(ws).run("build", lambda report: {}, who="ana")
    ws.clock.advance(timedelta(minutes=11))
    assert Jobs(ws).run("build", lambda report: {}, who="ana")["state"] == "done"
    assert Jobs(ws).get("far")["state"] == "interrupted"
