"""Price and stock history: what each products import found, kept as changes.

The ``products`` table holds the catalogue as it is now; a campaign that tells a customer
"the product you favourited is cheaper" needs what it was before. After the products rows
of an import are written — in the import's transaction, so both are kept or neither — every
product whose ``list_price`` or ``stock`` differs from its latest ``product_history`` row (or
that has none) gets a row stamped with the import's moment. Re-importing the same file
changes no product, so it adds nothing.

An import stamped earlier than rows already kept (a clock set back) says what held from its
moment on: the later rows are dropped, so the newest row of a product is always its
``products`` row.
"""

from __future__ import annotations

from datetime import datetime

import ibis

from archer.schema import PRODUCT_HISTORY, PRODUCT_HISTORY_SCHEMA
from archer.warehouse import Warehouse


def ensure(wh: Warehouse) -> None:
    """Create the history table if the warehouse has none yet."""
    if not wh.has_table(PRODUCT_HISTORY):
        wh.con.create_table(PRODUCT_HISTORY, schema=PRODUCT_HISTORY_SCHEMA)


def record(wh: Warehouse, at: datetime, import_id: str) -> int:
    """Append a row for every product whose price or stock changed since its latest row;
    ``at`` is the import's moment (naive UTC). Returns the rows added."""
    ensure(wh)
    h = wh.table(PRODUCT_HISTORY)
    when = ibis.literal(at, type="timestamp")
    earlier = h.filter(h.valid_from < when)
    newest = ibis.window(group_by=earlier.product_id, order_by=ibis.desc(earlier.valid_from))
    last = earlier.mutate(_rn=ibis.row_number().over(newest))
    last = last.filter(last._rn == 0).select(
        _pid=last.product_id, _price=last.list_price, _stock=last.stock
    )
    p = wh.table("products")
    j = p.left_join(last, p.product_id == last._pid)
    changed = j.filter(
        j._pid.isnull() | ~j.list_price.identical_to(j._price) | ~j.stock.identical_to(j._stock)
    )
    rows = changed.select(
        product_id=changed.product_id,
        list_price=changed.list_price,
        stock=changed.stock,
        valid_from=when,
        import_id=ibis.literal(import_id, type="string"),
    ).cast(PRODUCT_HISTORY_SCHEMA)
    later = int(h.filter(h.valid_from >= when).count().execute())
    staged = wh.stage(rows, PRODUCT_HISTORY)
    try:
        added = int(staged.count().execute())
        if later:  # rewrite without the rows stamped at or after this import
            kept = wh.stage(earlier.union(staged), f"{PRODUCT_HISTORY}_kept")
            wh.save(PRODUCT_HISTORY, kept)
            wh.drop_stage(kept)
        elif added:
            wh.con.insert(PRODUCT_HISTORY, staged)
    finally:
        wh.drop_stage(staged)
    return added
