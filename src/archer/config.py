"""Settings and the workspace: one folder holds one shop.

Settings come, highest first, from ``ARCHER_*`` environment variables, then
``archer.toml`` in the workspace, then the defaults below.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from archer.customers.rules import ProfileRules

CONFIG_FILE = "archer.toml"
DEFAULT_HOME = Path("archer-data")


def default_home() -> Path:
    """The workspace: ``ARCHER_HOME`` or ``./archer-data``."""
    return Path(os.environ.get("ARCHER_HOME") or DEFAULT_HOME)


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
        default_factory=lambda: {
            "email": ["1/16h"],
            "sms": ["1/24h", "4/30d"],
            "wecom": ["1/24h", "4/30d"],
        },
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


_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_CUSTOM_FIELDS = 50
_CUSTOMER_COLUMNS = ("name", "email", "phone", "occupation", "email_opt_in", "sms_opt_in",
                     "attributes")  # fmt: skip


class CustomField(BaseModel):
    """One of the shop's own member fields: a value its member export carries (kept in
    ``customers.attributes`` under the export's column name), given a name and a type so that
    audiences, exports and templates can use it (``[fields.member_level]``)."""

    source: str = Field(min_length=1, max_length=100, description="the column of the export")
    type: Literal["text", "number", "bool", "date"] = Field("text", description="its type")
    doc: str = Field("", max_length=300, description="what it means, for the field reference")


def check_custom_fields(fields: dict[str, CustomField]) -> dict[str, CustomField]:
    """Names a query can write (lower case, digits, _; up to 40), not one of Archer's own
    fields, and at most :data:`MAX_CUSTOM_FIELDS` of them."""
    if len(fields) > MAX_CUSTOM_FIELDS:
        raise ValueError(f"at most {MAX_CUSTOM_FIELDS} fields, got {len(fields)}")
    from archer.audiences.catalog import ALIASES
    from archer.customers.profile import PROFILE_COLUMNS

    for name in fields:
        if not _FIELD_NAME.match(name):
            raise ValueError(
                f"field name {name[:60]!r}: lower-case letters, digits and _, starting with a "
                "letter, up to 40 characters"
            )
        if name in PROFILE_COLUMNS or name in _CUSTOMER_COLUMNS or name in ALIASES:
            raise ValueError(f"field name {name!r} is one of Archer's own fields: choose another")
    return fields


class PointsSettings(BaseModel):
    per_yuan: float = Field(
        1.0, ge=0, le=1000, description="points earned per yuan of a paid order, net of refunds"
    )
    expires_days: int = Field(365, ge=1, le=3650, description="how long earned points last")
    exchange_rate: int = Field(500, ge=1, description="points for one exchange coupon")
    exchange_template: str = Field(
        "points-cash", description="the coupon template points are exchanged for"
    )


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


_PARAM = re.compile(r"^[A-Za-z0-9_]{1,40}$")


class SmsSettings(BaseModel):
    """An SMS provider's HTTP API. Both send only templates the provider approved: a step
    names one (``template``) and fills its parameters (``params``)."""

    provider: Literal["aliyun", "tencent"] = "aliyun"
    endpoint: str = Field(
        "",
        description="the API's address; empty: the provider's own "
        "(https://dysmsapi.aliyuncs.com/ or https://sms.tencentcloudapi.com/)",
    )
    access_key_id: str = Field("", description="AccessKey ID / SecretId; empty: not set up")
    access_key_secret: SecretStr = SecretStr("")
    sign_name: str = Field("", description="the approved signature, e.g. 某某商城")
    region: str = Field("", description="empty: cn-hangzhou (aliyun), ap-guangzhou (tencent)")
    app_id: str = Field("", description="tencent: the SmsSdkAppId")
    timeout: float = Field(5.0, gt=0, le=120, description="seconds to wait for an answer")
    cost_fen: int = Field(5, ge=0, le=10_000, description="cost of one message (one segment)")
    templates: dict[str, list[str]] = Field(
        default_factory=dict,
        description="the approved templates: code → its parameter names, e.g. "
        "{SMS_123 = ['name', 'order']}; steps are checked against it",
    )
    reply_secret: SecretStr = Field(
        SecretStr(""), description="the shared secret of POST /v1/sms/replies; empty: off"
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"expected an address such as https://sms.example.com/, got {v!r}")
        return v

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if len(v) > 1000:
            raise ValueError("at most 1,000 templates")
        for code, params in v.items():
            if not _PARAM.match(code) or len(params) > 20:
                raise ValueError(f"template {code!r}: a code of letters, digits, _ and "
                                 "at most 20 parameters")  # fmt: skip
            for p in params:
                if not _PARAM.match(p):
                    raise ValueError(f"template {code!r}: parameter {p!r} is not a name")
        return v

    @property
    def configured(self) -> bool:
        return bool(self.access_key_id)


class WecomSettings(BaseModel):
    """WeCom (企业微信) customer contact: messages a staff member confirms in the client."""

    corp_id: str = Field("", description="the corpid; empty: WeCom is not set up")
    corp_secret: SecretStr = Field(SecretStr(""), description="the customer-contact secret")
    endpoint: str = Field("https://qyapi.weixin.qq.com", description="the API's address")
    sender: str = Field("", description="the staff member's userid that sends; empty: any")
    id_attribute: str = Field(
        "wecom_external_userid",
        description="the key in a customer's `attributes` holding their external_userid",
    )
    contact_is_opt_in: bool = Field(
        True, description="a customer who added the shop's staff counts as opted in"
    )
    timeout: float = Field(5.0, gt=0, le=120)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"expected an address such as https://qyapi.weixin.qq.com, got {v!r}")
        return v.rstrip("/")

    @property
    def configured(self) -> bool:
        return bool(self.corp_id)


class Settings(BaseSettings):
    """Everything a shop configures. Paths are relative to ``home`` unless absolute."""

    model_config = SettingsConfigDict(env_prefix="ARCHER_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    shop_name: str = "My shop"
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    language: str = Field(
        default="",
        description="the operator's app: zh (Simplified Chinese) or en; empty: zh for a shop "
        "selling in CNY, else en",
    )
    warehouse: str = Field(
        default="", description="Ibis URL; default duckdb:///<home>/warehouse.duckdb"
    )
    database: str = Field(
        default="", description="SQLAlchemy URL; default sqlite:///<home>/archer.db"
    )
    profile: ProfileRules = Field(
        default_factory=ProfileRules, description="rules of the customer profile ([profile])"
    )
    campaigns: CampaignSettings = Field(
        default_factory=CampaignSettings, description="campaign guards and rounds ([campaigns])"
    )
    points: PointsSettings = Field(
        default_factory=PointsSettings, description="the points rules ([points])"
    )
    fields: dict[str, CustomField] = Field(
        default_factory=dict,
        description="the shop's own member fields ([fields.NAME] source = column, type)",
    )
    smtp: SmtpSettings = Field(
        default_factory=SmtpSettings, description="the shop's mail server ([smtp])"
    )
    sms: SmsSettings = Field(
        default_factory=SmsSettings, description="the shop's SMS provider ([sms])"
    )
    wecom: WecomSettings = Field(
        default_factory=WecomSettings, description="WeCom customer contact ([wecom])"
    )
    date_format: str = Field(
        default="", description="strptime format to try first for dates (e.g. %d/%m/%Y)"
    )
    trusted_proxies: str = Field(
        default="",
        description="addresses or networks of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto `archer serve` believes, comma-separated; none by default",
    )

    @field_validator("fields")
    @classmethod
    def _custom_fields(cls, v: dict[str, CustomField]) -> dict[str, CustomField]:
        return check_custom_fields(v)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, v: str) -> str:
        names = [x.strip() for x in v.split(",") if x.strip()]
        for name in names:
            try:
                ipaddress.ip_network(name, strict=False)
            except ValueError:
                raise ValueError(
                    f"{name!r} is not an IP address or network (e.g. 10.0.0.2 or 10.0.0.0/24)"
                ) from None
        return ",".join(names)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (expected an IANA name such as Asia/Shanghai)"
            ) from None
        return v

    @field_validator("language")
    @classmethod
    def _app_language(cls, v: str) -> str:
        v = v.strip().lower().replace("_", "-")
        v = {"zh-cn": "zh", "zh-hans": "zh", "en-us": "en", "en-gb": "en"}.get(v, v)
        if v not in ("", "zh", "en"):
            raise ValueError(f"language must be zh (Simplified Chinese) or en, got {v!r}")
        return v

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, v: str) -> str:
        if len(v) != 3 or not v.isalpha():
            raise ValueError(f"currency must be a 3-letter ISO 4217 code such as CNY, got {v!r}")
        return v.upper()

    @property
    def warehouse_url(self) -> str:
        """The warehouse URL; a relative DuckDB file (``duckdb://file.duckdb``) lies in the
        workspace, an absolute one (``duckdb:///srv/shop.duckdb``) where it says."""
        url = self.warehouse or "duckdb://warehouse.duckdb"
        rest = url.removeprefix("duckdb://")
        if url.startswith("duckdb://") and rest and not rest.startswith("/"):
            url = f"duckdb://{(self.home / rest).resolve()}"
        if url.startswith("pyspark://") and "warehouse=" not in url:
            # Spark keeps its tables in the workspace too, not in the current folder.
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}warehouse={(self.home / 'spark-warehouse').resolve()}"
        return url

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{(self.home / 'archer.db').resolve()}"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    def channels(self) -> list[str]:
        """The channels this shop can send on: its own inbox always, e-mail with ``[smtp]``,
        SMS with ``[sms]``, WeCom with ``[wecom]``."""
        out = ["inbox"]
        if self.smtp.host:
            out.append("email")
        if self.sms.configured:
            out.append("sms")
        if self.wecom.configured:
            out.append("wecom")
        return out

    @property
    def app_language(self) -> str:
        """The operator's app language: ``language``, else zh for a shop selling in CNY."""
        return self.language or ("zh" if self.currency == "CNY" else "en")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = _home_from(init_settings)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=home / CONFIG_FILE)
        return (init_settings, env_settings, toml)


def _home_from(init_settings: PydanticBaseSettingsSource) -> Path:
    given: dict[str, Any] = init_settings()
    return Path(given.get("home") or default_home())


def load_settings(home: Path | str | None = None) -> Settings:
    """Settings of the workspace at ``home`` (default ``ARCHER_HOME`` or ./archer-data)."""
    try:
        return Settings(home=Path(home)) if home is not None else Settings()
    except ValidationError as e:
        raise ValueError(describe(e)) from None
    except tomllib.TOMLDecodeError as e:
        where = Path(home or default_home()) / CONFIG_FILE
        raise ValueError(f"{where}: not valid TOML ({e})") from None


def describe(e: ValidationError) -> str:
    """A settings error in one line: which setting, what was wrong."""
    parts = []
    for err in e.errors():
        name = ".".join(str(x) for x in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"setting {name}: {msg} (ARCHER_{name.upper()} or archer.toml)")
    return "; ".join(parts)


_TEMPLATE = """\
# Archer workspace settings. Every value can also come from an ARCHER_* variable
# (ARCHER_TIMEZONE, ARCHER_WAREHOUSE, ...), which wins over this file.
shop_name = {shop_name}
timezone = "{timezone}"      # the shop's time zone: calendar days, festivals, send windows
currency = "{currency}"
# language = "en"     # the operator's app in zh (Simplified Chinese) or en; default zh for CNY
# warehouse = "duckdb:///path/to/warehouse.duckdb"   # or "pyspark://local"
# database = "sqlite:///path/to/archer.db"
# date_format = "%d/%m/%Y"   # tried first when a file's dates are ambiguous
"""


def init_workspace(
    home: Path | str | None = None,
    *,
    shop_name: str = "My shop",
    timezone: str = "Asia/Shanghai",
    currency: str = "CNY",
) -> Settings:
    """Create the workspace folder and its ``archer.toml``; keep an existing file as it is."""
    home = Path(home) if home is not None else default_home()
    try:  # validated before anything is written
        Settings(home=home, shop_name=shop_name, timezone=timezone, currency=currency)
    except ValidationError as e:
        raise ValueError(describe(e)) from None
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / CONFIG_FILE
    if not cfg.exists():
        cfg.write_text(
            _TEMPLATE.format(
                shop_name=json.dumps(shop_name, ensure_ascii=False),  # a valid TOML string
                timezone=timezone,
                currency=currency.upper(),
            ),
            encoding="utf-8",
        )
    settings = load_settings(home)
    settings.quarantine_dir.mkdir(exist_ok=True)
    return settings
