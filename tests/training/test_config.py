"""Training settings: defaults, a TOML or JSON file, then CLI overrides; unknown settings are refused."""

from __future__ import annotations

import pytest

from training.config import TrainConfig, load_config


def test_file_settings_and_overrides_apply_in_order(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("snapshots = 3\nchurn_horizon_days = 45\n[lightgbm]\nnum_leaves = 15\n")
    config = load_config(path, churn_horizon_days=60, clv_horizon_days=None)
    assert (config.snapshots, config.lightgbm.num_leaves, config.churn_horizon_days) == (3, 15, 60)
    assert config.clv_horizon_days == TrainConfig().clv_horizon_days
    assert config.lightgbm.num_threads == 1


def test_json_settings_work_too(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('{"stages": ["new", "won"], "min_positives": 10}')
    config = load_config(path)
    assert config.funnel.stages == ("new", "won") and config.funnel.lost == "lost" and config.min_positives == 10


@pytest.mark.parametrize(
    "text, named",
    [("colour = 1\n", "colour"), ("[lightgbm]\nleaves = 3\n", "leaves")],
    ids=["top level", "lightgbm table"],
)
def test_unknown_settings_are_refused_by_name(tmp_path, text, named):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=named):
        load_config(path)
