"""The warehouse: an Ibis backend opened from a URL, holding the canonical tables.

This is the only module that knows which engine runs. Everything else asks it
for Ibis tables and hands it Ibis expressions to store.

URLs: ``duckdb:///path/to/file.duckdb`` (the default, one file in the
workspace), ``duckdb://`` (in memory) and ``pyspark://local`` (a local Spark
session; ``pyspark://local?warehouse=DIR`` keeps its tables in DIR).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import duckdb
import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa

from archer.errors import Unavailable
from archer.schema import IMPORT_LOG, LOAD_ORDER, TABLES, get_table

IMPORT_LOG_TABLE = "import_log"
STAGING_PREFIX = "_build_"  # a build's tables until it publishes them (archer.pipeline)
# Tables a killed process may leave behind: a build's staging tables, scratch tables (Spark
# keeps them as real tables) and in-memory tables Ibis registered.
STRAY_PREFIXES = (STAGING_PREFIX, "_stage_", "ibis_duckdb_table_", "ibis_pandas_memtable_")


class WarehouseError(Unavailable):
    """The warehouse URL or engine could not be used."""


class WarehouseBusy(WarehouseError):
    """Another process holds the DuckDB file (DuckDB lets one process open it to write)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"cannot open the warehouse {path}: {reason} "
            "(DuckDB lets one process write at a time: wait for the other to finish)"
        )
        self.reason = reason


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    unchanged: int

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


class Warehouse:
    """A connected warehouse: canonical tables, upserts, the import log."""

    def __init__(self, con: ibis.BaseBackend, url: str, engine: str) -> None:
        self.con = con
        self.url = url
        self.engine = engine
        self._tmpdir: Path | None = None
        self._in_transaction = False

    # -- opening -----------------------------------------------------------------
    @classmethod
    def connect(cls, url: str) -> Warehouse:
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower() if sep else ""
        if scheme == "duckdb":
            path = rest.split("?", 1)[0]  # duckdb://rel.duckdb, duckdb:///abs.duckdb, duckdb://
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                con = ibis.duckdb.connect(path or ":memory:")
            except duckdb.IOException as e:
                raise WarehouseBusy(path, str(e).splitlines()[0]) from None
            return cls(con, url, "duckdb")
        if scheme == "pyspark":
            return cls(_spark_backend(url), url, "pyspark")
        raise WarehouseError(
            f"unsupported warehouse URL {url!r}: expected duckdb:///path or pyspark://local"
        )

    def cursor(self) -> Warehouse:
        """A view of this warehouse for one thread: on DuckDB a cursor of the same database
        (it sees every commit, and has its own transaction and temporary tables); on Spark the
        same session."""
        if self.engine != "duckdb":
            return self
        return Warehouse(ibis.duckdb.from_connection(self.con.con.cursor()), self.url, self.engine)

    def close(self) -> None:
        if self.engine == "duckdb":
            self.con.disconnect()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tables ------------------------------------------------------------------
    def ensure_tables(self) -> None:
        """Create every canonical table (and the import log) that does not exist yet."""
        existing = set(self.con.list_tables())
        for name in LOAD_ORDER:
            if name not in existing:
                self.con.create_table(name, schema=TABLES[name].ibis_schema())
        if IMPORT_LOG_TABLE not in existing:
            self.con.create_table(IMPORT_LOG_TABLE, schema=IMPORT_LOG)

    def table(self, name: str) -> ir.Table:
        return self.con.table(name)

    def has_table(self, name: str) -> bool:
        return name in self.con.list_tables()

    def counts(self) -> dict[str, int]:
        """Rows per canonical table (0 for a table not created yet)."""
        existing = set(self.con.list_tables())
        return {
            name: int(self.con.table(name).count().execute()) if name in existing else 0
            for name in LOAD_ORDER
        }

    # -- transactions ----------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing on DuckDB (a block inside another joins it); on Spark each table
        write is atomic on its own."""
        if self.engine != "duckdb" or self._in_transaction:
            yield
            return
        raw = self.con.con
        raw.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._in_transaction = False
            raw.execute("ROLLBACK")
            raise
        self._in_transaction = False
        raw.execute("COMMIT")

    def replace_with(self, name: str, staging: str) -> None:
        """Put table ``staging`` in the place of ``name`` (inside a transaction on DuckDB)."""
        q = self._quote
        if self.engine == "duckdb":
            self.con.raw_sql(f"DROP TABLE IF EXISTS {q(name)}")
            self.con.raw_sql(f"ALTER TABLE {q(staging)} RENAME TO {q(name)}")
            return
        # Spark: the catalog renames one table at a time; each step is atomic on its own.
        self.con.drop_table(name, force=True)
        self.con.rename_table(staging, name)

    def remove_strays(self) -> list[str]:
        """Drop the staging and scratch tables a killed build or import left behind. Safe only
        while no build runs: the Workspace calls it when it opens the warehouse (DuckDB lets
        one process at a time have it), the build when it starts."""
        gone = [n for n in self.con.list_tables() if n.startswith(STRAY_PREFIXES)]
        for name in gone:
            self.drop_any(name)
        return gone

    def drop_any(self, name: str) -> None:
        """Drop a table or view called ``name`` if there is one."""
        q = self._quote
        if self.engine == "duckdb":
            kind = self.con.con.execute(
                "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? AND NOT temporary "
                "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ?",
                [name, name],
            ).fetchone()
            if kind is not None:
                self.con.raw_sql(f"DROP {kind[0]} IF EXISTS {q(name)}")
            return
        self.con.drop_table(name, force=True)

    # -- moving data in ----------------------------------------------------------------
    def adopt(self, expr: ir.Table, reader: ibis.BaseBackend | None) -> ir.Table:
        """Make ``expr`` (built on ``reader``) usable in this warehouse.

        Same connection: returned as is. Another engine: streamed through a
        Parquet file, so nothing has to fit in memory.
        """
        if reader is self.con:
            return expr
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="archer-stage-"))
        path = self._tmpdir / f"stage_{uuid.uuid4().hex}.parquet"
        expr.to_parquet(path)
        return self.con.read_parquet(str(path))

    def upsert(self, name: str, rows: ir.Table, provided: list[str] | None = None) -> UpsertResult:
        """Insert new keys, replace changed rows, leave identical rows alone.

        ``rows`` must have the table's columns and unique keys. Importing the
        same rows twice therefore writes nothing the second time. ``provided``
        names the columns the source really had: the others keep the values
        already stored (a file of order statuses does not erase the amounts).
        """
        spec = get_table(name)
        key = list(spec.key)
        cols = spec.names
        if self.engine == "pyspark" and rows.op().find(ops.InMemoryTable):
            # Ibis cannot hand Spark an in-memory table with NULL decimals; Parquet can.
            rows = self.adopt(rows, None)
        rows = rows.select(cols).cast(spec.ibis_schema())
        target = self.table(name)
        if self.engine == "duckdb" and self.is_empty(name):
            # Nothing to compare with: stream the rows straight in.
            self.con.insert(name, rows)
            return UpsertResult(int(target.count().execute()), 0, 0)
        unchanged_cols = [
            c for c in cols if provided is not None and c not in provided and c not in key
        ]
        if unchanged_cols:
            old = target.select(*key, **{f"_old_{c}": target[c] for c in unchanged_cols})
            j = rows.left_join(old, key)
            rows = j.select(
                **{c: j[f"_old_{c}"].coalesce(j[c]) if c in unchanged_cols else j[c] for c in cols}
            )
        staged = self.stage(rows, name)

        # One pass over staged rows beside the stored ones: new, present, changed.
        old = target.select(**{f"_o_{c}": target[c] for c in cols})
        j = staged.left_join(old, [staged[k] == old[f"_o_{k}"] for k in key])
        found = j[f"_o_{key[0]}"].notnull()
        differs = found & ibis.or_(
            *[~j[c].identical_to(j[f"_o_{c}"]) for c in cols if c not in key]
        )
        n = (
            j.aggregate(
                new=j.count(where=~found),
                present=j.count(where=found),
                changed=j.count(where=differs),
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        n_new, n_existing, n_changed = int(n["new"]), int(n["present"]), int(n["changed"])
        if n_new == 0 and n_changed == 0:
            self.drop_stage(staged)
            return UpsertResult(0, 0, n_existing)

        changed = j.filter(differs).select(*key)
        if self.engine == "duckdb":
            if n_changed:
                changed_keys = self.stage(changed, f"{name}_changed")
                self._delete_keys(name, changed_keys.op().name, key)
                self.drop_stage(changed_keys)
            # The changed rows were deleted above, so new and changed rows go in alike.
            self.con.insert(name, staged.anti_join(self.table(name), key))
        else:
            kept = target.anti_join(changed, key)
            merged = kept.union(staged.anti_join(kept, key))
            scratch = self.stage(merged, f"{name}_merged")
            self.con.create_table(name, scratch, overwrite=True)
            self.drop_stage(scratch)
        self.drop_stage(staged)
        return UpsertResult(n_new, n_changed, n_existing - n_changed)

    def save(self, name: str, expr: ir.Table) -> ir.Table:
        """Write ``expr`` as the derived table ``name``, replacing what was there."""
        if self.engine == "pyspark" and self.has_table(name):
            # Spark cannot overwrite a table it is reading from: stage, then replace.
            staged = self.stage(expr, name)
            self.con.drop_table(name, force=True)
            out = self.con.create_table(name, staged, overwrite=True)
            self.drop_stage(staged)
            return out
        return self.con.create_table(name, expr, overwrite=True)

    def is_empty(self, name: str) -> bool:
        return int(self.table(name).limit(1).count().execute()) == 0

    def stage(self, expr: ir.Table, hint: str) -> ir.Table:
        """Compute ``expr`` once into a scratch table that ``drop_stage`` removes."""
        name = f"_stage_{hint}_{uuid.uuid4().hex[:8]}"
        if self.engine == "duckdb":
            return self.con.create_table(name, expr, temp=True)
        return self.con.create_table(name, expr)

    def drop_stage(self, t: ir.Table) -> None:
        self.con.drop_table(t.op().name, force=True)

    def _delete_keys(self, name: str, keys_table: str, key: list[str]) -> None:
        # Identifiers only: the keys themselves come from a table, never from text.
        q = self._quote
        cond = " AND ".join(f"{q(name)}.{q(k)} = {q(keys_table)}.{q(k)}" for k in key)
        self.con.raw_sql(f"DELETE FROM {q(name)} USING {q(keys_table)} WHERE {cond}")

    @staticmethod
    def _quote(ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'

    # -- the import log --------------------------------------------------------------
    def log_import(self, record: dict) -> None:
        row = pa.Table.from_pylist([record], schema=IMPORT_LOG.to_pyarrow())
        self.con.insert(IMPORT_LOG_TABLE, ibis.memtable(row))

    def last_imports(self, limit: int = 10) -> list[dict]:
        if not self.has_table(IMPORT_LOG_TABLE):
            return []
        t = self.table(IMPORT_LOG_TABLE)
        df = t.order_by(ibis.desc(t.finished_at)).limit(limit).to_pyarrow().to_pylist()
        return df

    def find_import(self, import_id: str) -> dict | None:
        """One import's row of the log, by its id."""
        if not self.has_table(IMPORT_LOG_TABLE):
            return None
        t = self.table(IMPORT_LOG_TABLE)
        rows = t.filter(t.import_id == ibis.literal(import_id, "string")).limit(1)
        got = rows.to_pyarrow().to_pylist()
        return got[0] if got else None


def _spark_backend(url: str) -> ibis.BaseBackend:
    """A Spark session from ``pyspark://MASTER[?warehouse=DIR]``.

    MASTER is ``local`` (two cores), ``local[N]``, ``local[*]``, or a cluster
    given as ``?master=spark://host:7077``. Tables are Parquet folders in DIR;
    Spark's own catalog lives only as long as its session, so the folders found
    there are registered again on each connect.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:  # pragma: no cover - depends on the extra being installed
        raise WarehouseError(
            "pyspark:// needs PySpark: pip install 'archer[spark]' (and a Java 17 runtime)"
        ) from e
    rest = url.split("://", 1)[1]
    master, _, query = rest.partition("?")
    opts = parse_qs(query)
    master = opts.get("master", [master or "local"])[0]
    master = "local[2]" if master == "local" else master
    builder = (
        SparkSession.builder.master(master)
        .appName("archer")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if "warehouse" in opts:
        builder = builder.config("spark.sql.warehouse.dir", opts["warehouse"][0])
        _stop_session_elsewhere(SparkSession, opts["warehouse"][0])
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")  # Spark's warnings are not the user's business
    _register_saved_tables(session)
    return ibis.pyspark.connect(session)


def _stop_session_elsewhere(spark_session, where: str) -> None:
    """Stop a running session whose warehouse is another folder.

    The warehouse folder is fixed when a session starts; reusing a session made for another
    warehouse would write this warehouse's tables into that one's folder.
    """
    active = spark_session.getActiveSession()
    if active is None:
        return
    current = active.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    if Path(current).resolve() != Path(where.removeprefix("file:")).resolve():
        active.stop()


def _register_saved_tables(session) -> None:
    where = session.conf.get("spark.sql.warehouse.dir")
    root = Path(where.removeprefix("file:"))
    if not root.is_dir():
        return
    known = {t.name for t in session.catalog.listTables()}
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and folder.name not in known and any(folder.glob("*.parquet")):
            session.catalog.createTable(folder.name, path=str(folder), source="parquet")


def connect(url: str) -> Warehouse:
    """Open the warehouse at ``url`` and make sure its tables exist."""
    wh = Warehouse.connect(url)
    wh.ensure_tables()
    return wh
