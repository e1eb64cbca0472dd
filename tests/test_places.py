"""Canonical place names and the mapping of Chinese written forms onto them."""

from __future__ import annotations

import pandas as pd
import pytest

from archer.places import (
    alias_table,
    city_aliases,
    load_places,
    lookup_city,
    normalise_key,
    parse_address,
    parse_addresses,
    province_aliases,
)

# fmt: off
MAINLAND = {
    "Beijing", "Tianjin", "Hebei", "Shanxi", "Inner Mongolia", "Liaoning", "Jilin",
    "Heilongjiang", "Shanghai", "Jiangsu", "Zhejiang", "Anhui", "Fujian", "Jiangxi",
    "Shandong", "Henan", "Hubei", "Hunan", "Guangdong", "Guangxi", "Hainan", "Chongqing",
    "Sichuan", "Guizhou", "Yunnan", "Tibet", "Shaanxi", "Gansu", "Qinghai", "Ningxia",
    "Xinjiang",
}
# fmt: on


def test_every_province_present_exactly_once() -> None:
    provinces = load_places().drop_duplicates(["province", "province_zh"])
    assert len(MAINLAND) == 31
    assert set(provinces["province"]) == MAINLAND | {"Hong Kong", "Macau", "Taiwan"}
    assert provinces["province"].is_unique and provinces["province_zh"].is_unique


def test_cities_are_complete_and_well_formed() -> None:
    places = load_places()
    assert list(places.columns) == ["province", "province_zh", "city", "city_zh", "weight"]
    assert len(places) >= 333
    assert not places.duplicated(["province", "city"]).any()
    assert places["city_zh"].is_unique
    assert (places["weight"] > 0).all()
    # No official suffixes leak into the short forms.
    assert not places["city_zh"].str.endswith(("市", "地区", "盟", "自治州")).any()
    assert not places["province_zh"].str.endswith(("省", "自治区")).any()
    for municipality in ["Beijing", "Shanghai", "Tianjin", "Chongqing"]:
        rows = places[places["province"] == municipality]
        assert rows["city"].tolist() == [municipality]


def test_audience_example_names_exist() -> None:
    pairs = set(load_places()[["province", "city"]].itertuples(index=False, name=None))
    assert {("Jiangsu", "Nanjing"), ("Zhejiang", "Hangzhou"), ("Shanghai", "Shanghai")} <= pairs
    assert {"Jiangsu", "Zhejiang", "Shanghai"} <= {p for p, _ in pairs}


@pytest.mark.parametrize(
    ("forms", "canonical"),
    [
        (
            ["江苏", "江苏省", "Jiangsu", "JIANGSU", " jiangsu province ", "Jiangsu Sheng"],
            "Jiangsu",
        ),
        (["上海", "上海市", "Shanghai Municipality"], "Shanghai"),
        (
            ["内蒙古", "内蒙古自治区", "Inner Mongolia", "inner mongolia autonomous region"],
            "Inner Mongolia",
        ),
        (["广西", "广西壮族自治区", "Guangxi Zhuang Autonomous Region"], "Guangxi"),
        (["宁夏", "宁夏回族自治区"], "Ningxia"),
        (["新疆", "新疆维吾尔自治区"], "Xinjiang"),
        (["西藏", "西藏自治区", "Xizang", "Tibet"], "Tibet"),
        (["香港", "香港特别行政区", "Hong Kong"], "Hong Kong"),
        (["澳门", "澳门特别行政区", "Macao"], "Macau"),
        (["台湾", "台湾省"], "Taiwan"),
        (["陕西省", "Shaanxi"], "Shaanxi"),
        (["山西省", "Shanxi"], "Shanxi"),
    ],
)
def test_province_forms_map_to_one_name(forms: list[str], canonical: str) -> None:
    aliases = province_aliases()
    assert {aliases[normalise_key(f)] for f in forms} == {canonical}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("南京", ("Jiangsu", "Nanjing")),
        ("南京市", ("Jiangsu", "Nanjing")),
        ("Nanjing", ("Jiangsu", "Nanjing")),
        ("xian", ("Shaanxi", "Xi'an")),
        ("Xi'an", ("Shaanxi", "Xi'an")),
        ("延边朝鲜族自治州", ("Jilin", "Yanbian")),
        ("延边州", ("Jilin", "Yanbian")),
        ("锡林郭勒盟", ("Inner Mongolia", "Xilingol")),
        ("喀什地区", ("Xinjiang", "Kashgar")),
        ("宿州市", ("Anhui", "Suzhou")),
        ("苏州", ("Jiangsu", "Suzhou")),
        ("台州", ("Zhejiang", "Taizhou")),
        ("上海市", ("Shanghai", "Shanghai")),
    ],
)
def test_city_lookup(form: str, expected: tuple[str, str]) -> None:
    assert city_aliases()[normalise_key(form)] == expected


def test_ambiguous_city_names_need_the_province() -> None:
    aliases = city_aliases()
    for name in ["Suzhou", "Taizhou", "Fuzhou", "Yichun", "Yulin"]:
        assert normalise_key(name) not in aliases
    assert "海南" not in aliases  # the province, not the Qinghai prefecture
    assert lookup_city("Suzhou", "安徽省") == ("Anhui", "Suzhou")
    assert lookup_city("Suzhou", "Jiangsu") == ("Jiangsu", "Suzhou")
    assert lookup_city("Suzhou") is None
    assert lookup_city("海南州") == ("Qinghai", "Hainan")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("江苏省 南京市 鼓楼区 中山路1号", ("Jiangsu", "Nanjing")),
        ("江苏省南京市鼓楼区中山路1号", ("Jiangsu", "Nanjing")),
        ("上海 上海市 浦东新区 世纪大道100号", ("Shanghai", "Shanghai")),
        ("上海市浦东新区世纪大道100号", ("Shanghai", "Shanghai")),
        ("北京北京市朝阳区建国路88号", ("Beijing", "Beijing")),
        ("北京市朝阳区建国路88号", ("Beijing", "Beijing")),  # 朝阳 is also a Liaoning city
        ("重庆 重庆市 渝中区 解放碑", ("Chongqing", "Chongqing")),
        ("广西壮族自治区南宁市青秀区民族大道", ("Guangxi", "Nanning")),
        ("内蒙古自治区 呼和浩特市 新城区", ("Inner Mongolia", "Hohhot")),
        ("新疆维吾尔自治区乌鲁木齐市天山区", ("Xinjiang", "Urumqi")),
        ("   浙江省 杭州市 西湖区 文三路", ("Zhejiang", "Hangzhou")),
        ("\u3000浙江 金华市 义乌市 稠城街道", ("Zhejiang", "Jinhua")),
        ("浙江省义乌市稠城街道", ("Zhejiang", "Jinhua")),
        ("江苏省 苏州市 昆山市 玉山镇", ("Jiangsu", "Suzhou")),
        ("安徽省宿州市埇桥区", ("Anhui", "Suzhou")),
        ("吉林省吉林市船营区", ("Jilin", "Jilin")),
        ("吉林省长春市朝阳区", ("Jilin", "Changchun")),
        ("辽宁省朝阳市双塔区", ("Liaoning", "Chaoyang")),
        ("青海省海南藏族自治州共和县", ("Qinghai", "Hainan")),
        ("海南省 海口市 美兰区", ("Hainan", "Haikou")),
        ("湖北省 省直辖县级行政区划 仙桃市", ("Hubei", "Xiantao")),
        ("吉林省 延边朝鲜族自治州 延吉市", ("Jilin", "Yanbian")),
        ("香港特别行政区 九龙 弥敦道", ("Hong Kong", "Hong Kong")),
        ("深圳市南山区科技园", ("Guangdong", "Shenzhen")),
        ("中国广东省广州市天河区", ("Guangdong", "Guangzhou")),
        ("江苏省 某某县", ("Jiangsu", None)),
    ],
)
def test_parse_address(address: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("text", ["", "   ", "unknown", "123 Main Street", "某某路1号"])
def test_unknown_text_parses_to_nothing(text: str) -> None:
    assert parse_address(text) == (None, None)


def test_parse_addresses_matches_row_by_row() -> None:
    values = pd.Series(
        ["江苏省 南京市 鼓楼区", None, "上海上海市徐汇区", "nowhere", "江苏省 南京市 鼓楼区"],
        index=[10, 11, 12, 13, 14],
    )
    out = parse_addresses(values)
    assert list(out.columns) == ["province", "city"]
    assert out.index.tolist() == values.index.tolist()
    expected = [parse_address(v) if isinstance(v, str) else (None, None) for v in values]
    got = [(p, c) for p, c in out.itertuples(index=False)]
    assert [tuple(None if pd.isna(x) else x for x in row) for row in got] == expected
    assert parse_addresses(pd.Series([], dtype="object")).empty


def test_alias_table_keys_unique_per_kind() -> None:
    table = alias_table()
    assert list(table.columns) == ["kind", "key", "province", "city"]
    assert set(table["kind"]) == {"province", "city"}
    assert not table.duplicated(["kind", "key"]).any()
    assert (table["key"] == table["key"].map(normalise_key)).all()
    places = load_places()
    pairs = set(places[["province", "city"]].itertuples(index=False, name=None))
    cities = table[table["kind"] == "city"]
    assert set(cities[["province", "city"]].itertuples(index=False, name=None)) == pairs
    assert set(table.loc[table["kind"] == "province", "province"]) == set(places["province"])
