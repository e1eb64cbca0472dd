"""The ``[campaigns]`` and ``[smtp]`` tables of ``archer.toml`` (or ``ARCHER_CAMPAIGNS`` and
``ARCHER_SMTP`` as JSON).

The defaults are the cautious ones: marketing needs the customer's opt-in, at most one
marketing e-mail per customer per 16 hours and one SMS a day, no SMS at night.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

_CAP = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d{1,4})\s*([hd])\s*$")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_cap(text: str) -> tuple[int, timedelta]:
    """``1/16h``: at most 1 message in any 16 hours; ``3/7d``: 3 in any 7 days."""
    m = _CAP.match(text) if isinstance(text, str) else None
    if m is None or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ValueError(f"expected a cap such as 1/16h or 3/7d, got {text!r}")
    n, length, unit = int(m.group(1)), int(m.group(2)), m.group(3)
    return n, timedelta(hours=length) if unit == "h" else timedelta(days=length)


class CampaignSettings(BaseModel):
    holdout: float = Field(0.10, ge=0, le=0.9, description="default holdout share")
    public_url: str = Field(
        "", description="the https address the app is reached at (unsubscribe links)"
    )
    consent: Literal["opt_in", "opt_out"] = Field(
        "opt_in",
        description="opt_in: marketing needs the customer's opt-in (an imported flag or a "
        "recorded grant); opt_out: everyone not opted out may get it",
    )
    caps: dict[str, list[str]] = Field(
        default_factory=lambda: {"email": ["1/16h"], "sms": ["1/24h", "4/30d"], "wecom": ["1/24h"]},
        description="marketing frequency caps per channel, e.g. {email = ['1/16h']}",
    )
    quiet_hours: dict[str, str] = Field(
        default_factory=lambda: {"sms": "22:00-08:00", "wecom": "22:00-08:00"},
        description="per channel, the local hours no marketing goes out (HH:MM-HH:MM)",
    )
    lease_seconds: int = Field(120, ge=5, le=3600, description="a claimed message's lease")
    max_attempts: int = Field(8, ge=1, le=50, description="tries before a message fails")
    retry_seconds: int = Field(30, ge=1, description="first retry delay; doubles each time")
    batch: int = Field(200, ge=1, le=10_000, description="messages a worker claims at once")
    round_seconds: int = Field(60, ge=1, description="`archer serve`: seconds between rounds")

    @field_validator("caps")
    @classmethod
    def _caps(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for caps in v.values():
            for c in caps:
                parse_cap(c)
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: dict[str, str]) -> dict[str, str]:
        for span in v.values():
            if not _HOURS.match(span):
                raise ValueError(f"expected quiet hours as HH:MM-HH:MM, got {span!r}")
        return v

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"expected an address such as https://shop.example.com, got {v!r}")
        return v.rstrip("/")


class SmtpSettings(BaseModel):
    host: str = Field("", description="the mail server; empty: e-mail is not set up")
    port: int = Field(587, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    sender: str = Field("", description="From: e.g. 'My shop <news@shop.example.com>'")
    reply_to: str = ""
    timeout: float = Field(10.0, gt=0, le=300)
    connections: int = Field(2, ge=1, le=50, description="connections a worker keeps open")
