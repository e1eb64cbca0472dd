"""Measure: what a campaign or an outside experiment earned, with intervals that say how sure.

* :mod:`archer.measurement.stats` — differences between a treated arm and a control arm
  (Newcombe for rates, Welch or bootstrap for money per customer), the minimum detectable
  effect and a verdict that declares nothing below it;
* :mod:`archer.measurement.experiment` — the report of an arm-level test a shop ran elsewhere
  (``archer measure experiment``), the Hillstrom e-mail test being the reference.
"""

from __future__ import annotations

from archer.measurement.stats import (
    Difference,
    Moments,
    mde_mean,
    mde_rate,
    mean_difference,
    rate_difference,
    verdict,
)

__all__ = [
    "Difference",
    "Moments",
    "mde_mean",
    "mde_rate",
    "mean_difference",
    "rate_difference",
    "verdict",
]
