"""The synthetic shop: a realistic, seeded shop with the truth it was drawn from."""

from archer.sample.shop import generate

__all__ = ["generate"]
