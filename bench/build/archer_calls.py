"""Every part of archer the build benchmark's archer side uses (the child that times ``build()``
and the diagnostics that patch or profile its parts), in one place. Imported only by the
processes that run archer, never by the pandas contender."""

from archer import pipeline
from archer.customers import lifecycle, preferences
from archer.facts import Snapshot
from archer.pipeline import build
from archer.warehouse import Warehouse

__all__ = ["Snapshot", "Warehouse", "build", "lifecycle", "pipeline", "preferences"]
