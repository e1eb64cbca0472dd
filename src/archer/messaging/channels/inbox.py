"""The shop's own inbox: messages land in the store, and the shop's site shows a member
theirs through the API (``GET /v1/inbox/{customer}``). No provider, no address, no cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archer.messaging.channels import Outgoing, Sent
from archer.store.consent import InboxMessage
from archer.store.sql import insert_ignore

if TYPE_CHECKING:
    from archer.workspace import Workspace


class InboxChannel:
    name = "inbox"

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def send(self, msg: Outgoing) -> Sent:
        row = {
            "uid": msg.uid,
            "customer_id": msg.customer_id,
            "campaign": msg.campaign,
            "title": msg.subject or "",
            "body": msg.text or "",
            "created_at": self.ws.now(),
            "read_at": None,
        }
        with self.ws.session(write=True) as s:  # the uid is unique: a second send adds nothing
            insert_ignore(s, InboxMessage.__table__, [row], ("uid",))
        return Sent(provider_id=msg.uid)

    def close(self) -> None:
        pass
