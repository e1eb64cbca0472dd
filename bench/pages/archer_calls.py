"""Every part of archer the pages diagnostics call in-process (``diagnose.py``), in one place.
The benchmark itself reaches archer only through the CLI (``common/archer_calls.py``)."""

from archer.audiences import count
from archer.audiences import service as audience_service
from archer.config import load_settings
from archer.customers import describe
from archer.warehouse import Warehouse
from archer.web import create_app
from archer.web.ui import customers_data
from archer.web.ui.overview_data import overview

__all__ = [
    "Warehouse",
    "audience_service",
    "count",
    "create_app",
    "customers_data",
    "describe",
    "load_settings",
    "overview",
]
