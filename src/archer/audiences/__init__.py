"""Audiences: who a campaign is for, in one line of text.

    net_spent >= 500 and province in ("Jiangsu", "Zhejiang", "Shanghai")

Text → parser (:mod:`.grammar`) → typed tree (:mod:`.tree`) → Ibis (:mod:`.compile`,
:mod:`.behaviour`) → count, members, explain (:mod:`.evaluate`). The language reference is
docs/audiences.md.
"""

from archer.audiences.evaluate import NotBuilt, compile_audience, count, explain, members
from archer.audiences.grammar import AudienceError, parse

__all__ = [
    "AudienceError",
    "NotBuilt",
    "compile_audience",
    "count",
    "explain",
    "members",
    "parse",
]
