"""Customer-base models (issue 4): RFM summaries computed in the warehouse and the BG/NBD model."""

from archer.models.bgnbd import BGNBD
from archer.models.summary import patterns, rfm_summary

__all__ = ["BGNBD", "patterns", "rfm_summary"]
