"""Values as JSON carries them: the one converter the CLI's ``--json``, the REST API, the views'
reports and the pages use.

* missing values (``None``, NaN, NaT) and infinities → ``None``;
* decimals → floats; NumPy scalars and arrays → their Python values;
* dates and times → ISO text. With ``days=True`` a moment at midnight is written as its day:
  the warehouse hands date columns to pandas as midnight Timestamps, and a view's ``period``
  is a day (``2026-10-01``), not a moment;
* dicts, lists and tuples → the same, converted all the way down.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd


def plain(v: Any, *, days: bool = False) -> Any:
    """``v`` as a value JSON can carry (see the module's notes)."""
    if isinstance(v, dict):
        return {str(k): plain(x, days=days) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [plain(x, days=days) for x in v]
    if isinstance(v, np.ndarray):
        return plain(v.tolist(), days=days)
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, Decimal):
        return plain(float(v))
    if isinstance(v, datetime):  # pandas Timestamps too
        if days and v.time() == time(0) and getattr(v, "nanosecond", 0) == 0:
            return v.date().isoformat()
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if hasattr(v, "item") and callable(v.item):  # NumPy scalars
        return plain(v.item(), days=days)
    return v


def records(df: pd.DataFrame, *, days: bool = False) -> list[dict[str, Any]]:
    """The rows of ``df`` as dicts of plain values."""
    return [
        {str(k): plain(v, days=days) for k, v in row.items()}
        for row in df.to_dict(orient="records")
    ]
