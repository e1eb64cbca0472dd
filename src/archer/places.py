"""Canonical place names of China and the mapping of written forms onto them.

Places are stored as canonical English (``Jiangsu``, ``Nanjing``); shop exports write them
in many shapes (江苏省, 江苏, "Jiangsu Province", 延边朝鲜族自治州). This module owns that
mapping: alias dictionaries, an alias table for joins inside the engine, and a parser for
the leading province/city of a Chinese shipping address.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache, lru_cache
from importlib.resources import files

import pandas as pd

# Data tables below are kept compact: several names per line.
# fmt: off
# Official Chinese names that are not simply "<short>省".
_PROVINCE_FULL = {
    "北京": "北京市", "天津": "天津市", "上海": "上海市", "重庆": "重庆市",
    "内蒙古": "内蒙古自治区", "广西": "广西壮族自治区", "西藏": "西藏自治区",
    "宁夏": "宁夏回族自治区", "新疆": "新疆维吾尔自治区",
    "香港": "香港特别行政区", "澳门": "澳门特别行政区",
}
_PROVINCE_EXTRA = {
    "Inner Mongolia": ["Nei Mongol", "Neimenggu", "内蒙"],
    "Guangxi": ["Guangxi Zhuang Autonomous Region", "广西自治区"],
    "Tibet": ["Xizang", "Xizang Autonomous Region"],
    "Ningxia": ["Ningxia Hui Autonomous Region", "宁夏自治区"],
    "Xinjiang": ["Xinjiang Uygur Autonomous Region", "Xinjiang Uyghur Autonomous Region",
                 "新疆自治区"],
    "Hong Kong": ["HK", "Hong Kong SAR", "香港特区"],
    "Macau": ["Macao", "Macau SAR", "Macao SAR", "澳门特区"],
}
# Official names of prefectures that are not "<short>市".
_CITY_FULL = {
    "兴安": "兴安盟", "锡林郭勒": "锡林郭勒盟", "阿拉善": "阿拉善盟",
    "大兴安岭": "大兴安岭地区", "阿里": "阿里地区", "阿克苏": "阿克苏地区",
    "喀什": "喀什地区", "和田": "和田地区", "塔城": "塔城地区", "阿勒泰": "阿勒泰地区",
    "神农架": "神农架林区", "延边": "延边朝鲜族自治州", "恩施": "恩施土家族苗族自治州",
    "湘西": "湘西土家族苗族自治州", "阿坝": "阿坝藏族羌族自治州", "甘孜": "甘孜藏族自治州",
    "凉山": "凉山彝族自治州", "黔西南": "黔西南布依族苗族自治州",
    "黔东南": "黔东南苗族侗族自治州", "黔南": "黔南布依族苗族自治州",
    "楚雄": "楚雄彝族自治州", "红河": "红河哈尼族彝族自治州", "文山": "文山壮族苗族自治州",
    "西双版纳": "西双版纳傣族自治州", "大理": "大理白族自治州",
    "德宏": "德宏傣族景颇族自治州", "怒江": "怒江傈僳族自治州", "迪庆": "迪庆藏族自治州",
    "临夏": "临夏回族自治州", "甘南": "甘南藏族自治州", "海北": "海北藏族自治州",
    "黄南": "黄南藏族自治州", "海南": "海南藏族自治州", "果洛": "果洛藏族自治州",
    "玉树": "玉树藏族自治州", "海西": "海西蒙古族藏族自治州", "昌吉": "昌吉回族自治州",
    "博尔塔拉": "博尔塔拉蒙古自治州", "巴音郭楞": "巴音郭楞蒙古自治州",
    "克孜勒苏": "克孜勒苏柯尔克孜自治州", "伊犁": "伊犁哈萨克自治州",
}
# Former names still found in old addresses (prefectures turned cities, renamed cities).
_CITY_FORMER = {
    "吐鲁番地区": "吐鲁番", "哈密地区": "哈密", "海东地区": "海东", "日喀则地区": "日喀则",
    "昌都地区": "昌都", "林芝地区": "林芝", "山南地区": "山南", "那曲地区": "那曲",
    "毕节地区": "毕节", "铜仁地区": "铜仁", "襄樊": "襄阳", "襄樊市": "襄阳",
}
# Pinyin / conventional English variants of the canonical English names.
_CITY_ENGLISH = {
    "Huhehaote": "呼和浩特", "Eerduosi": "鄂尔多斯", "Hulunbeier": "呼伦贝尔",
    "Bayannaoer": "巴彦淖尔", "Wulanchabu": "乌兰察布", "Xing'an": "兴安",
    "Xilinguole": "锡林郭勒", "Alashan": "阿拉善", "Haerbin": "哈尔滨", "Qiqihaer": "齐齐哈尔",
    "Lvliang": "吕梁", "Lyuliang": "吕梁", "Wulumuqi": "乌鲁木齐", "Kelamayi": "克拉玛依",
    "Tulufan": "吐鲁番", "Kashi": "喀什", "Hetian": "和田", "Yili": "伊犁", "Aletai": "阿勒泰",
    "Boertala": "博尔塔拉", "Bayinguoleng": "巴音郭楞", "Kezilesu": "克孜勒苏", "Akesu": "阿克苏",
    "Lasa": "拉萨", "Rikaze": "日喀则", "Changdu": "昌都", "Linzhi": "林芝", "Naqu": "那曲",
    "Ali": "阿里", "Ganzi": "甘孜", "Guoluo": "果洛", "Xiangfan": "襄阳", "Macao": "澳门",
}
# Large county-level cities written without their prefecture ("浙江省义乌市").
_COUNTY_CITY = {
    "昆山": "苏州", "常熟": "苏州", "张家港": "苏州", "太仓": "苏州", "江阴": "无锡",
    "宜兴": "无锡", "义乌": "金华", "永康": "金华", "东阳": "金华", "慈溪": "宁波",
    "余姚": "宁波", "乐清": "温州", "瑞安": "温州", "诸暨": "绍兴", "温岭": "台州",
    "海宁": "嘉兴", "桐乡": "嘉兴", "晋江": "泉州", "石狮": "泉州", "福清": "福州",
    "寿光": "潍坊", "库尔勒": "巴音郭楞",
}
# fmt: on
_CJK = re.compile(r"[\u4e00-\u9fff]")
_SPACES = re.compile(r"[\s\u3000]+")
_STRIP = re.compile(r"[\s\u3000'’`\-.]+")


def normalise_key(s: str) -> str:
    """Key under which a written place name is looked up: trimmed, casefolded, no spaces.

    Apostrophes, hyphens and dots go too, so "Xi'an", "Xian" and "xi an" share a key.
    """
    return _STRIP.sub("", str(s).strip().casefold())


@cache
def _places() -> pd.DataFrame:
    with (files("archer") / "data" / "places.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype={"weight": "float64"})


def load_places() -> pd.DataFrame:
    """One row per city: province, province_zh, city, city_zh, weight (millions, 2020 census).

    Read once; each call returns a copy, so callers may modify it freely.
    """
    return _places().copy()


@cache
def province_aliases() -> dict[str, str]:
    """Every accepted written form of a province -> canonical English name."""
    out: dict[str, str] = {}
    provinces = _places().drop_duplicates("province")
    for name, zh in zip(provinces["province"], provinces["province_zh"], strict=True):
        full = _PROVINCE_FULL.get(zh, zh + "省")
        forms = [name, zh, full, *_PROVINCE_EXTRA.get(name, [])]
        if full.endswith("市"):
            forms += [f"{name} Municipality", f"{name} City", f"{name} Shi"]
        elif full.endswith("自治区"):
            forms += [f"{name} Autonomous Region", f"{name} Zizhiqu", zh + "自治区"]
        elif full.endswith("特别行政区"):
            forms += [f"{name} Special Administrative Region"]
        else:
            forms += [f"{name} Province", f"{name} Sheng"]
        out.update({normalise_key(f): name for f in forms})
    return out


@cache
def _city_candidates() -> dict[str, frozenset[tuple[str, str]]]:
    """Every written form of a city -> all (province, city) it may denote."""
    by_zh = {
        zh: (p, c)
        for p, c, zh in _places()[["province", "city", "city_zh"]].itertuples(index=False)
    }
    cands: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for zh, (p, c) in by_zh.items():
        full = _CITY_FULL.get(zh, zh + "市")
        forms = [c, f"{c} City", f"{c} Shi", zh, full]
        if full.endswith("自治州"):
            forms += [zh + "州", f"{c} Prefecture", f"{c} Autonomous Prefecture"]
        elif full.endswith(("地区", "盟")):
            forms += [f"{c} Prefecture", f"{c} League"]
        for form in forms:
            cands[normalise_key(form)].add((p, c))
    extras = {**_CITY_FORMER, **_CITY_ENGLISH, **_COUNTY_CITY}
    extras.update({county + "市": zh for county, zh in _COUNTY_CITY.items()})
    for form, zh in extras.items():
        cands[normalise_key(form)].add(by_zh[zh])
    return {k: frozenset(v) for k, v in cands.items()}


@cache
def city_aliases() -> dict[str, tuple[str, str]]:
    """Unambiguous written forms of a city -> (province, city).

    A form naming cities in two provinces (Suzhou, Taizhou, Fuzhou, Yichun, Yulin) is left
    out, as is one that is another province's name (海南 the Qinghai prefecture); use
    :func:`lookup_city` with the province to resolve those.
    """
    provinces = province_aliases()
    out: dict[str, tuple[str, str]] = {}
    for key, targets in _city_candidates().items():
        if len(targets) != 1:
            continue
        (target,) = targets
        if provinces.get(key, target[0]) == target[0]:
            out[key] = target
    return out


def lookup_city(city: str, province: str | None = None) -> tuple[str, str] | None:
    """(province, city) for a written city name, using the province to break ties."""
    targets = _city_candidates().get(normalise_key(city), frozenset())
    if province is not None:
        canonical = province_aliases().get(normalise_key(province))
        targets = frozenset(t for t in targets if t[0] == canonical)
    return next(iter(targets)) if len(targets) == 1 else None


def alias_table() -> pd.DataFrame:
    """One row per alias (kind, key, province, city) for joins inside the engine."""
    rows = [("province", k, p, None) for k, p in province_aliases().items()]
    rows += [("city", k, p, c) for k, (p, c) in city_aliases().items()]
    return pd.DataFrame(rows, columns=["kind", "key", "province", "city"])


@cache
def _address_regex() -> re.Pattern[str]:
    """Leading (province)(city) of an address; longest alternatives first."""

    def alternation(keys: list[str]) -> str:
        cjk = sorted((k for k in keys if _CJK.search(k)), key=len, reverse=True)
        return "|".join(map(re.escape, cjk))

    prov, city = alternation(list(province_aliases())), alternation(list(city_aliases()))
    skip = "(?:省|市)?(?:(?:省|自治区)?直辖县级行政区划|市辖区)?"
    return re.compile(
        rf"^(?:中国|中华人民共和国)?(?:(?P<p1>{prov}){skip}(?P<c1>{city})"
        rf"|(?P<c2>{city})|(?P<p3>{prov}))"
    )


@cache
def sole_cities() -> dict[str, str]:
    """Provinces that are one city (municipalities, Hong Kong, Macau, Taiwan) → that city:
    a place there given without a city is in it."""
    counts = _places().groupby("province")["city"].agg(["count", "first"])
    return counts.loc[counts["count"] == 1, "first"].to_dict()


@lru_cache(maxsize=65536)
def _parse_prefix(prefix: str) -> tuple[str | None, str | None]:
    m = _address_regex().match(prefix)
    if m is None:
        return None, None
    provinces, cities = province_aliases(), city_aliases()
    if m["c2"]:
        return cities[m["c2"]]
    province = provinces[m["p1"] or m["p3"]]
    if m["c1"] and cities[m["c1"]][0] == province:
        return province, cities[m["c1"]][1]
    return province, sole_cities().get(province)


_PREFIX_LEN = 40  # 中华人民共和国 + the longest province, 直辖县级 filler and city


def parse_address(text: str) -> tuple[str | None, str | None]:
    """(province, city) in canonical English from the start of a Chinese address.

    Either part is None when it cannot be told; a municipality's city is itself.
    """
    if not isinstance(text, str):
        return None, None
    return _parse_prefix(_SPACES.sub("", text)[:_PREFIX_LEN])


def parse_addresses(values: pd.Series) -> pd.DataFrame:
    """Vectorised :func:`parse_address`: columns province, city, aligned on ``values``.

    Each distinct leading part (first 40 non-space characters) is parsed once, so repeated
    addresses cost nothing; about 2-3 s per million distinct addresses.
    """
    text = values.astype("string").str.replace(_SPACES.pattern, "", regex=True)
    codes, uniques = pd.factorize(text.str.slice(0, _PREFIX_LEN), use_na_sentinel=True)
    parsed = [_parse_prefix.__wrapped__(u) for u in uniques] + [(None, None)]
    table = pd.DataFrame(parsed, columns=["province", "city"], dtype="object")
    return table.iloc[codes].set_axis(values.index)
