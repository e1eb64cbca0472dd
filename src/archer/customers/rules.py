"""The rules of the profile that a shop may change, in ``[profile]`` of ``archer.toml``.

Each value is documented in docs/profile.md next to the rule it drives. Defaults suit a shop
whose customers buy every few weeks to months; a shop can tighten or loosen them::

    [profile]
    loyal_min_purchases = 3
    lapse_quantile = 0.8
    festivals = ["singles_day", "618", "double_12"]
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, field_validator, model_validator

from archer.festivals import DEFAULT_FESTIVALS, RULES_BY_KEY, Festival, festival_windows


class CustomFestival(BaseModel):
    """A shop's own sale window, e.g. the shop's anniversary: both ends inclusive."""

    name: str
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> CustomFestival:
        if self.end < self.start:
            raise ValueError(f"festival {self.name!r} ends ({self.end}) before it starts")
        return self


class ProfileRules(BaseModel):
    # lifecycle and stage
    loyal_min_purchases: int = Field(2, ge=2, description="purchase days that make a repeat buyer")
    lapse_quantile: float = Field(
        0.9, gt=0.5, lt=1.0, description="share of gaps between purchases a threshold covers"
    )
    lapse_prior_gaps: int = Field(
        50, ge=0, description="weight of the shop-wide threshold, in gaps, when shrinking a cell"
    )
    lapse_min_days: int = Field(14, ge=1, description="no threshold is shorter than this")
    lost_factor: float = Field(2.0, gt=1.0, description="lost = this many thresholds past")
    cart_window_days: int = Field(30, ge=1, description="a cart counts as open this long")
    refund_window_days: int = Field(30, ge=1, description="'refunded recently' means within")
    birthday_window_days: int = Field(7, ge=0, description="'birthday soon' means within")
    # preferences
    weight_bought: float = Field(5.0, ge=0, description="category score of a bought line")
    weight_favorite: float = Field(3.0, ge=0, description="… of a favourite")
    weight_cart: float = Field(2.0, ge=0, description="… of a cart add")
    weight_view: float = Field(1.0, ge=0, description="… of a product view")
    discount_share: float = Field(
        0.5, ge=0, lt=1, description="sensitive above this share of orders with a discount"
    )
    discount_min_orders: int = Field(2, ge=1, description="orders needed to judge discounts")
    festival_alpha: float = Field(
        0.05, gt=0, lt=0.5, description="significance of the festival-buyer test"
    )
    # model scores
    clv_models: list[str] = Field(
        default_factory=lambda: ["bgnbd", "mbgnbd", "pareto-nbd"],
        description="purchase models to choose from by holdout error; empty: no scores",
    )
    clv_holdout_days: int = Field(180, ge=7, description="holdout used to choose the model")
    clv_discount_rate: float = Field(0.1, ge=0, lt=1, description="annual discount rate of CLV")
    clv_margin: float | None = Field(
        None, gt=0, le=1, description="gross margin of CLV; default: learned from unit costs"
    )
    churn_high: float = Field(0.3, ge=0, le=1, description="p(alive) below this: high risk")
    churn_medium: float = Field(0.7, ge=0, le=1, description="p(alive) below this: medium risk")
    festivals: list[str] = Field(
        default_factory=lambda: [r.key for r in DEFAULT_FESTIVALS],
        description="festival keys from archer.festivals that count as festival windows",
    )
    custom_festivals: list[CustomFestival] = Field(default_factory=list)

    @field_validator("clv_models")
    @classmethod
    def _known_models(cls, v: list[str]) -> list[str]:
        allowed = ("bgnbd", "mbgnbd", "pareto-nbd")
        unknown = [m for m in v if m not in allowed]
        if unknown:
            raise ValueError(f"unknown purchase model(s) {unknown}; known: {', '.join(allowed)}")
        return v

    @model_validator(mode="after")
    def _bands(self) -> ProfileRules:
        if self.churn_high > self.churn_medium:
            raise ValueError("churn_high must not be above churn_medium")
        return self

    @field_validator("festivals")
    @classmethod
    def _known_festivals(cls, v: list[str]) -> list[str]:
        unknown = [k for k in v if k not in RULES_BY_KEY]
        if unknown:
            known = ", ".join(RULES_BY_KEY)
            raise ValueError(f"unknown festival key(s) {unknown}; known: {known}")
        return v

    def windows(self, start: date, end: date) -> list[Festival]:
        """The festival windows overlapping [start, end] under these rules."""
        rules = tuple(RULES_BY_KEY[k] for k in self.festivals)
        out = festival_windows(start, end, rules)
        out += [
            Festival(c.name, f"custom_{i}", c.start, c.end)
            for i, c in enumerate(self.custom_festivals)
            if c.end >= start and c.start <= end
        ]
        return sorted(out, key=lambda f: (f.start, f.key))
