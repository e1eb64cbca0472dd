"""A real PostgreSQL server for the tests, started by the tests themselves (one per process).

The server runs from a temporary folder on a free loopback port, with ``fsync=off`` (a test
database is thrown away, so durability buys nothing). PostgreSQL refuses to run as root: as
root, it runs as the ``postgres`` user (made with ``useradd`` if missing) through ``runuser``.
Each test gets a fresh database (:meth:`PgServer.create_database`), dropped after it.

Where no PostgreSQL can be found or started, :func:`start` raises :class:`Unavailable` with
the reason, and the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "archer"  # the server's superuser (trust authentication, loopback only)
RUN_AS = "postgres"  # the system user the server runs as when the tests run as root
START_TRIES = 3  # another process may take the free port between the check and the start
TIMEOUT = 120  # seconds for initdb and for pg_ctl's start and stop
PREFIX = "archer-pg-"  # the temporary folders' names start so
OWNER = "owner.pid"  # in each: the test process that started the server


class Unavailable(RuntimeError):
    """No PostgreSQL server could be started here; the message says why."""


@dataclass
class PgServer:
    bindir: Path
    root: Path  # the temporary folder: data/, the socket, the log
    port: int
    run_as: str | None  # the user the server runs as, or None: as this process

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new, empty database (from ``template0``); its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                    "-w", "-t", str(TIMEOUT), "stop"], check=False)  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: from the PATH, else Debian's place."""
    found = shutil.which("pg_ctl")
    candidates = [Path(os.path.realpath(found)).parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file() and (d / "postgres").is_file():
            return d
    return None


def start() -> PgServer:
    """Initialise and start a server in a new temporary folder; :class:`Unavailable` if not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg is not installed (pip install -e '.[postgres]')") from None
    bindir = find_bindir()
    if bindir is None:
        raise Unavailable(
            "no PostgreSQL binaries (initdb, pg_ctl) on the PATH or in /usr/lib/postgresql/*/bin"
            " (apt-get install postgresql)"
        )
    run_as = _server_user()
    _sweep(bindir, run_as)
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / OWNER).write_text(str(os.getpid()))
    srv = PgServer(bindir, root, 0, run_as)
    try:
        if run_as:
            pw = pwd.getpwnam(run_as)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        root.chmod(0o700)
        _run(srv, [str(bindir / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER,
                   "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip
        for _ in range(START_TRIES):
            srv.port = _free_port()
            options = (
                f"-c port={srv.port} -c listen_addresses=127.0.0.1"
                f" -c unix_socket_directories={root} -c fsync=off -c synchronous_commit=off"
                " -c full_page_writes=off -c max_connections=200"
            )
            res = _run(srv, [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l",
                             str(root / "server.log"), "-w", "-t", str(TIMEOUT), "-o", options,
                             "start"], check=False)  # fmt: skip
            if res.returncode == 0:
                return srv
        log = (root / "server.log").read_text(errors="replace")[-2000:]
        raise Unavailable(f"PostgreSQL did not start ({bindir}): {res.stdout[-500:]}\n{log}")
    except Unavailable:
        shutil.rmtree(root, ignore_errors=True)
        raise
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(root, ignore_errors=True)
        raise Unavailable(f"PostgreSQL could not be set up in {root}: {e}") from None


def _sweep(bindir: Path, run_as: str | None) -> None:
    """Stop the servers that test processes killed before their teardown left behind."""
    for d in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((d / OWNER).read_text())
            os.kill(owner, 0)
            continue  # its test process is still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge (unreadable, or no owner written yet)
        PgServer(bindir, d, 0, run_as).stop()


def _server_user() -> str | None:
    """None when this process may run the server; as root, the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    if shutil.which("runuser") is None:
        raise Unavailable("running as root without runuser: cannot start PostgreSQL as postgres")
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )
    return RUN_AS


def _run(srv: PgServer, cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    if srv.run_as:
        cmd = ["runuser", "-u", srv.run_as, "--", *cmd]
    res = subprocess.run(
        cmd,
        cwd=srv.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
    )
    if check and res.returncode != 0:
        raise Unavailable(f"{' '.join(cmd)} failed ({res.returncode}): {res.stdout[-1500:]}")
    return res


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
