"""Config loading: good YAML validates; bad YAML fails before any work, naming the field and allowed values."""

from __future__ import annotations

import pytest
import yaml

from automixer.config import ConfigError, PipelineConfig, config_from_dict, load_config
from automixer.demo import demo_config


def _write(tmp_path, raw):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_demo_config_round_trips_through_yaml(tmp_path):
    from automixer.config import dump_config

    cfg = demo_config(tmp_path / "w", "tiny")
    dump_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_bad_format_names_field_and_allowed_values(tmp_path):
    raw = {"sources": [{"name": "a", "domain": "web", "path": "x", "format": "csv"}]}
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, raw))
    msg = str(err.value)
    assert "sources.0.format" in msg and "'jsonl'" in msg and "'parquet'" in msg and "'csv'" in msg


def test_unknown_domain_and_unknown_field_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"sources\.0\.domain: 'news' is not a configured domain"):
        load_config(_write(tmp_path, {"sources": [{"name": "a", "domain": "news", "path": "x"}]}))
    with pytest.raises(ConfigError, match=r"sweep\.n_run: unknown field"):
        load_config(_write(tmp_path, {"sweep": {"n_run": 3}}))


def test_constraints_are_checked(tmp_path):
    bad = {"propose": {"constraints": {"min_weight": {"code": 0.7, "web": 0.6}}}}
    with pytest.raises(ConfigError, match="sum to 1.300 > 1"):
        load_config(_write(tmp_path, bad))
    with pytest.raises(ConfigError, match=r"n_heads \(3\) must divide d_model \(64\)"):
        load_config(_write(tmp_path, {"proxy": {"n_heads": 3}}))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_defaults_are_valid():
    cfg = PipelineConfig()
    assert cfg.domains == ["code", "math", "web", "synthetic"]
    assert cfg.path("shards").as_posix().endswith("runs/default/shards")


def test_readme_example_config_is_valid():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = config_from_dict(yaml.safe_load(block), where="README example")
    assert {s.format for s in cfg.sources} == {"jsonl", "parquet", "hf", "warc"}


def test_constraints_naming_an_unknown_domain_fail_at_load() -> None:
    with pytest.raises(ConfigError, match=r"propose.constraints name \['news'\]"):
        config_from_dict({"propose": {"constraints": {"groups": [{"name": "g", "domains": ["news"], "min": 0.1}]}}})
