"""The ledger in the warehouse: each build copies the campaigns' runs and messages there, so
audiences (``received(campaign = "…", within = 7d)``) and results can use them.

Only what analysis needs is copied (no rendered context, no addresses); times are naive UTC,
as every warehouse table keeps them. A build step, registered in the pipeline.
"""

from __future__ import annotations

import ibis
import pyarrow as pa
from sqlalchemy import select

from archer.pipeline import Build, Step
from archer.schema import (
    CAMPAIGN_MESSAGES,
    CAMPAIGN_MESSAGES_SCHEMA,
    CAMPAIGN_RUNS,
    CAMPAIGN_RUNS_SCHEMA,
)
from archer.store import StoreError
from archer.store import campaigns as rows

RUNS_SCHEMA = CAMPAIGN_RUNS_SCHEMA.to_pyarrow()
MESSAGES_SCHEMA = CAMPAIGN_MESSAGES_SCHEMA.to_pyarrow()
CHUNK = 100_000


def _naive(t):
    return None if t is None else t.replace(tzinfo=None)


def run(b: Build) -> dict:
    """The build goes on when the store cannot be read (the ledger's last copy stays)."""
    try:
        return _copy(b)
    except StoreError as e:
        return {"errors": {"": str(e)}}


def _copy(b: Build) -> dict:
    c, e, m = rows.Campaign, rows.Enrollment, rows.Message
    runs: dict[str, list] = {f.name: [] for f in RUNS_SCHEMA}
    msgs: dict[str, list] = {f.name: [] for f in MESSAGES_SCHEMA}
    with b.ws.session() as s:
        q = select(c.name, e.customer_id, e.trigger_key, e.arm, e.variant, e.version,
                   e.entered_at, e.state, e.end_reason, e.ended_at).join(
            c, c.id == e.campaign_id)  # fmt: skip
        for r in s.execute(q.execution_options(yield_per=CHUNK)):
            for f, v in zip(RUNS_SCHEMA.names, r, strict=True):
                runs[f].append(_naive(v) if f in ("entered_at", "ended_at") else v)
        q = (
            select(c.name, e.customer_id, e.trigger_key, m.step, m.channel, m.purpose, m.arm,
                   m.variant, m.state, m.reason, m.due_at, m.sent_at, m.cost_fen)
            .join(e, e.id == m.enrollment_id)
            .join(c, c.id == m.campaign_id)
        )  # fmt: skip
        for r in s.execute(q.execution_options(yield_per=CHUNK)):
            for f, v in zip(MESSAGES_SCHEMA.names, r, strict=True):
                msgs[f].append(_naive(v) if f in ("due_at", "sent_at") else v)
    b.write(CAMPAIGN_RUNS, ibis.memtable(pa.table(runs, schema=RUNS_SCHEMA)))
    b.write(CAMPAIGN_MESSAGES, ibis.memtable(pa.table(msgs, schema=MESSAGES_SCHEMA)))
    return {"runs": len(runs["campaign"]), "messages": len(msgs["campaign"])}


STEP = Step("campaign ledger", run)
