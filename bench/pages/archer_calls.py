"""Every part of archer the pages diagnostics call in-process (``diagnose.py``), in one place.
The benchmark itself reaches archer only through the CLI (``common/archer_calls.py``)."""

from archer import open as load_settings  # the workspace
from archer.analytics.overview import overview
from archer.audiences import browse, count
from archer.audiences import service as audience_service
from archer.customers import describe
from archer.customers import timeline as customers_data
from archer.warehouse import Warehouse
from archer.web import create_app

__all__ = [
    "browse",
    "Warehouse",
    "audience_service",
    "count",
    "create_app",
    "customers_data",
    "describe",
    "load_settings",
    "overview",
]
