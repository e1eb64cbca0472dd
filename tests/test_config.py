"""Settings: defaults, archer.toml, ARCHER_* variables, and clear errors."""

from __future__ import annotations

import pytest

from archer.config import init_workspace, load_settings


def test_init_writes_settings_and_keeps_an_existing_file(tmp_path):
    s = init_workspace(tmp_path / "shop", shop_name="茶叶小店", timezone="Asia/Shanghai")
    text = (tmp_path / "shop" / "archer.toml").read_text(encoding="utf-8")
    assert 'shop_name = "茶叶小店"' in text
    assert s.warehouse_url.startswith("duckdb:///") and s.warehouse_url.endswith("warehouse.duckdb")
    assert (tmp_path / "shop" / "quarantine").is_dir()
    again = init_workspace(tmp_path / "shop", shop_name="other")
    assert again.shop_name == "茶叶小店"


def test_sample_shop_defaults(tmp_path):
    s = init_workspace(tmp_path)
    assert (s.timezone, s.currency) == ("Asia/Shanghai", "CNY")


def test_environment_beats_the_file(tmp_path, monkeypatch):
    init_workspace(tmp_path, timezone="Europe/London", currency="GBP")
    assert load_settings(tmp_path).timezone == "Europe/London"
    monkeypatch.setenv("ARCHER_TIMEZONE", "America/New_York")
    monkeypatch.setenv("ARCHER_WAREHOUSE", "duckdb:///elsewhere.duckdb")
    s = load_settings(tmp_path)
    assert s.timezone == "America/New_York" and s.currency == "GBP"
    assert s.warehouse_url == "duckdb:///elsewhere.duckdb"


def test_archer_home_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHER_HOME", str(tmp_path / "h"))
    s = init_workspace()
    assert s.home == tmp_path / "h" and (tmp_path / "h" / "archer.toml").exists()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"currency": "RMBX"}, "3-letter"),
    ],
)
def test_bad_settings_are_named(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        init_workspace(tmp_path / "x", **kw)
    assert not (tmp_path / "x" / "archer.toml").exists()


def test_awkward_names_and_paths(tmp_path, monkeypatch):
    s = init_workspace(tmp_path / "a", shop_name='Tea "&" 茶')
    assert load_settings(tmp_path / "a").shop_name == 'Tea "&" 茶'
    monkeypatch.setenv("ARCHER_WAREHOUSE", "duckdb://shop.duckdb")
    assert (
        load_settings(tmp_path / "a").warehouse_url
        == f"duckdb://{(s.home / 'shop.duckdb').resolve()}"
    )


def test_a_broken_settings_file_is_named(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / "archer.toml").write_text('timezone = "Asia/Shanghai\n', encoding="utf-8")
    with pytest.raises(ValueError, match="archer.toml: not valid TOML"):
        load_settings(tmp_path)
    (tmp_path / "archer.toml").write_text('timezone = "Nowhere/City"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="setting timezone: unknown time zone 'Nowhere/City'"):
        load_settings(tmp_path)
