"""Customer-base models (issue 4): RFM summaries computed in the warehouse, the purchase models
(BG/NBD, MBG/NBD, Pareto/NBD, BG/BB), the Gamma-Gamma spend model and lifetime value."""

from archer.models.bgbb import BGBB
from archer.models.bgnbd import BGNBD
from archer.models.clv import (
    churn_risk,
    discounted_expected_purchases,
    lifetime_value,
    period_length,
    period_rate,
)
from archer.models.gamma_gamma import GammaGamma
from archer.models.mbgnbd import MBGNBD
from archer.models.pareto_nbd import ParetoNBD
from archer.models.summary import calibration_holdout_summary, patterns, rfm_summary

MODELS = {
    "bgnbd": BGNBD,
    "mbgnbd": MBGNBD,
    "pareto-nbd": ParetoNBD,
    "bgbb": BGBB,
    "gamma-gamma": GammaGamma,
}

__all__ = [
    "BGBB",
    "BGNBD",
    "MBGNBD",
    "MODELS",
    "GammaGamma",
    "ParetoNBD",
    "calibration_holdout_summary",
    "churn_risk",
    "discounted_expected_purchases",
    "lifetime_value",
    "patterns",
    "period_length",
    "period_rate",
    "rfm_summary",
]
