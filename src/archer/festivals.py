"""Chinese shopping festivals: their dates per year and the selling window around each.

Lunar festivals (Spring Festival, Qixi, Mid-Autumn) come from tables for 2015–2035;
the others are fixed dates or rules (Mother's Day is the second Sunday of May).
Windows are shop-local calendar dates, both ends inclusive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

# Lunar new year (正月初一), Qixi (七月初七) and Mid-Autumn (八月十五) per Gregorian year.
LUNAR_NEW_YEAR = {
    2015: (2, 19), 2016: (2, 8), 2017: (1, 28), 2018: (2, 16), 2019: (2, 5),
    2020: (1, 25), 2021: (2, 12), 2022: (2, 1), 2023: (1, 22), 2024: (2, 10),
    2025: (1, 29), 2026: (2, 17), 2027: (2, 6), 2028: (1, 26), 2029: (2, 13),
    2030: (2, 3), 2031: (1, 23), 2032: (2, 11), 2033: (1, 31), 2034: (2, 19),
    2035: (2, 8),
}  # fmt: skip
QIXI = {
    2015: (8, 20), 2016: (8, 9), 2017: (8, 28), 2018: (8, 17), 2019: (8, 7),
    2020: (8, 25), 2021: (8, 14), 2022: (8, 4), 2023: (8, 22), 2024: (8, 10),
    2025: (8, 29), 2026: (8, 19), 2027: (8, 8), 2028: (8, 26), 2029: (8, 16),
    2030: (8, 5), 2031: (8, 24), 2032: (8, 12), 2033: (8, 1), 2034: (8, 20),
    2035: (8, 10),
}  # fmt: skip
MID_AUTUMN = {
    2015: (9, 27), 2016: (9, 15), 2017: (10, 4), 2018: (9, 24), 2019: (9, 13),
    2020: (10, 1), 2021: (9, 21), 2022: (9, 10), 2023: (9, 29), 2024: (9, 17),
    2025: (10, 6), 2026: (9, 25), 2027: (9, 15), 2028: (10, 3), 2029: (9, 22),
    2030: (9, 12), 2031: (10, 1), 2032: (9, 19), 2033: (9, 8), 2034: (9, 27),
    2035: (9, 16),
}  # fmt: skip


@dataclass(frozen=True)
class Festival:
    """One festival in one year: its selling window and its main day."""

    name: str
    key: str
    start: date
    end: date
    day: date | None = None

    def contains(self, d: date) -> bool:
        return self.start <= d <= self.end


@dataclass(frozen=True)
class FestivalRule:
    """How to place a festival in a year: the main day and the window around it (in days)."""

    name: str
    key: str
    day: Callable[[int], date | None]
    before: int
    after: int = 0
    hot_words: tuple[str, ...] = ()


def _fixed(month: int, day: int) -> Callable[[int], date | None]:
    return lambda year: date(year, month, day)


def _table(table: dict[int, tuple[int, int]]) -> Callable[[int], date | None]:
    return lambda year: date(year, *table[year]) if year in table else None


def second_sunday_of_may(year: int) -> date:
    """Mother's Day in China (as in the US): the second Sunday of May."""
    first = date(year, 5, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7)


DEFAULT_FESTIVALS: tuple[FestivalRule, ...] = (
    FestivalRule("Spring Festival", "spring_festival", _table(LUNAR_NEW_YEAR), 21, -3,
                 ("年货", "年货节", "新年礼盒", "spring festival gift", "new year gift box")),
    FestivalRule("Valentine's Day", "valentines", _fixed(2, 14), 7, 0,
                 ("情人节礼物", "valentine gift", "巧克力礼盒", "roses")),
    FestivalRule("Women's Day", "womens_day", _fixed(3, 8), 7, 0,
                 ("女神节", "38女王节", "women's day gift")),
    FestivalRule("Mother's Day", "mothers_day", second_sunday_of_may, 7, 0,
                 ("mother's day gift", "母亲节礼物", "送妈妈", "康乃馨")),
    FestivalRule("520", "520", _fixed(5, 20), 3, 0, ("520礼物", "520 gift", "表白礼物")),
    FestivalRule("6.18", "618", _fixed(6, 18), 17, 0, ("618", "618大促", "618 deals", "满减")),
    FestivalRule("Qixi", "qixi", _table(QIXI), 7, 0, ("七夕礼物", "qixi gift", "七夕")),
    FestivalRule("Mid-Autumn", "mid_autumn", _table(MID_AUTUMN), 14, 0,
                 ("月饼", "mooncake", "中秋礼盒", "mid-autumn gift")),
    FestivalRule("Singles' Day", "singles_day", _fixed(11, 11), 11, 0,
                 ("双十一", "双11", "11.11 deals", "双11预售", "满减")),
    FestivalRule("Double 12", "double_12", _fixed(12, 12), 3, 0, ("双十二", "双12", "12.12")),
)  # fmt: skip

RULES_BY_KEY = {r.key: r for r in DEFAULT_FESTIVALS}


def festival_windows(
    start: date, end: date, rules: tuple[FestivalRule, ...] = DEFAULT_FESTIVALS
) -> list[Festival]:
    """Every festival whose window overlaps [start, end], in date order.

    Windows are not clipped to the period; lunar festivals outside the tables are skipped.
    """
    out: list[Festival] = []
    for year in range(start.year - 1, end.year + 2):
        for rule in rules:
            day = rule.day(year)
            if day is None:
                continue
            w0, w1 = day - timedelta(days=rule.before), day + timedelta(days=rule.after)
            if w1 >= start and w0 <= end:
                out.append(Festival(rule.name, rule.key, w0, w1, day))
    return sorted(out, key=lambda f: (f.start, f.key))


def shop_closures(start: date, end: date) -> list[tuple[date, date]]:
    """Spring Festival holidays (New Year's Eve to the 6th day) when shops barely sell or ship."""
    out = []
    for year in range(start.year - 1, end.year + 2):
        if year in LUNAR_NEW_YEAR:
            ny = date(year, *LUNAR_NEW_YEAR[year])
            c0, c1 = ny - timedelta(days=1), ny + timedelta(days=6)
            if c1 >= start and c0 <= end:
                out.append((c0, c1))
    return out


def festival_on(d: date, festivals: list[Festival]) -> Festival | None:
    """The festival whose window holds ``d`` (the later-starting one where windows overlap)."""
    hit = None
    for f in festivals:
        if f.contains(d):
            hit = f
    return hit
