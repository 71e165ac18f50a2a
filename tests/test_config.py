"""Config loading: defaults, TOML, env precedence, and clear errors naming the key."""

import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.config import SCHEMA, ConfigError, as_dict, env_name, load_config, markdown_table


def write(tmp_path, text: str):
    path = tmp_path / "hlfast.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_schema():
    cfg = load_config(env={})
    for section, (_, options) in SCHEMA.items():
        for opt in options:
            value = getattr(getattr(cfg, section), opt.name)
            expected = tuple(opt.default) if isinstance(opt.default, list) else opt.default
            assert value == expected, f"{section}.{opt.name}"
    assert cfg.quoting.levels == 25
    assert cfg.metrics.host == "127.0.0.1"


def test_toml_then_env_then_overrides(tmp_path):
    path = write(tmp_path, "[quoting]\nlevels = 10\ngamma = 0.5\n[market]\ncoin = 'ETH'\n")
    cfg = load_config(path, env={"HLFAST_QUOTING_LEVELS": "12"}, overrides={"quoting": {"gamma": 0.7}})
    assert cfg.quoting.levels == 12
    assert cfg.quoting.gamma == 0.7
    assert cfg.market.coin == "ETH"


def test_frozen():
    cfg = load_config(env={})
    with pytest.raises(AttributeError):
        cfg.quoting.levels = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[quoting]\nlevels = 0\n", "quoting.levels"),
        ("[quoting]\nlevels = 65\n", "int in [1, 64]"),
        ("[quoting]\nlevels = 'many'\n", "quoting.levels"),
        ("[quoting]\nlevelz = 3\n", "unknown key quoting.levelz"),
        ("[quotin]\nlevels = 3\n", "unknown section [quotin]"),
        ("[engine]\nread_mode = 'spin'\n", "one of 'busy', 'blocking'"),
        ("[impulse]\nenabled = 1\n", "impulse.enabled"),
        ("[risk]\nmax_position = -1.0\n", "risk.max_position"),
        ("[exchange]\nbase_url = 'http://x/'\n", "must not end with '/'"),
        ("quoting = 3\n", "[quoting] must be a table"),
        ("[quoting\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key_and_range(tmp_path, text, needle):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={})
    assert needle in str(err.value)


def test_env_errors_name_the_variable():
    with pytest.raises(ConfigError, match="HLFAST_QUOTING_GAMMA"):
        load_config(env={"HLFAST_QUOTING_GAMMA": "fast"})
    with pytest.raises(ConfigError, match="unknown variable HLFAST_RISK_MAX_POS"):
        load_config(env={"HLFAST_RISK_MAX_POS": "1"})
    cfg = load_config(env={"HLFAST_IMPULSE_ENABLED": "false", "HLFAST_IMPULSE_INITIAL_TOKENS": "inf",
                           "HLFAST_RISK_LIQUIDATOR_ADDRESSES": "0xa, 0xb", "HLFAST_PRIVATE_KEY": "ignored"})
    assert cfg.impulse.enabled is False
    assert math.isinf(cfg.impulse.initial_tokens)
    assert cfg.risk.liquidator_addresses == ("0xa", "0xb")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_markdown_table_lists_every_option():
    table = markdown_table()
    for section, (_, options) in SCHEMA.items():
        for opt in options:
            assert f"`{env_name(section, opt.name)}`" in table


toml_scalars = st.one_of(
    st.booleans(), st.integers(-10**9, 10**9), st.floats(allow_nan=True), st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)


@settings(deadline=None, max_examples=300)
@given(section=st.sampled_from(sorted(SCHEMA)), data=st.data(), value=toml_scalars)
def test_fuzz_any_value_gives_a_config_or_an_error_naming_the_key(section, data, value):
    opt = data.draw(st.sampled_from(SCHEMA[section][1]))
    try:
        cfg = load_config(env={}, overrides={section: {opt.name: value}})
    except ConfigError as err:
        assert f"{section}.{opt.name}" in str(err)
    else:
        assert section in as_dict(cfg)


def test_example_config_in_repo_loads():
    import pathlib

    example = pathlib.Path(__file__).resolve().parents[1] / "hlfast.example.toml"
    with open(example, "rb") as fh:
        tomllib.load(fh)
    load_config(example, env={})
