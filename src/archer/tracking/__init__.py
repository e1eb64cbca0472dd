"""Tracking: the Segment HTTP spec (:mod:`.spec`) and the inbox → warehouse loader (:mod:`.loader`).

The inbox table lives in :mod:`archer.store.inbox`; the HTTP routes in :mod:`archer.web.tracking`.
"""
