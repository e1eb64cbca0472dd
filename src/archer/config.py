"""Settings and the workspace: one folder holds one shop.

Settings come, highest first, from ``ARCHER_*`` environment variables, then
``archer.toml`` in the workspace, then the defaults below.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from archer.customers.rules import ProfileRules
from archer.messaging.settings import CampaignSettings, SmtpSettings

CONFIG_FILE = "archer.toml"
DEFAULT_HOME = Path("archer-data")


def default_home() -> Path:
    """The workspace: ``ARCHER_HOME`` or ``./archer-data``."""
    return Path(os.environ.get("ARCHER_HOME") or DEFAULT_HOME)


class Settings(BaseSettings):
    """Everything a shop configures. Paths are relative to ``home`` unless absolute."""

    model_config = SettingsConfigDict(env_prefix="ARCHER_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    shop_name: str = "My shop"
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
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
    smtp: SmtpSettings = Field(
        default_factory=SmtpSettings, description="the shop's mail server ([smtp])"
    )
    date_format: str = Field(
        default="", description="strptime format to try first for dates (e.g. %d/%m/%Y)"
    )
    trusted_proxies: str = Field(
        default="",
        description="addresses or networks of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto `archer serve` believes, comma-separated; none by default",
    )

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
