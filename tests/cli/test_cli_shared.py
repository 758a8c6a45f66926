"""What the commands share: the report writer and the hybrid settings from flags."""

from __future__ import annotations

import json
import math

import pytest

from tradebrain.cli._shared import hybrid_config, report_json
from tradebrain.config import Settings
from tradebrain.exceptions import UserInputError

REPORT = {
    "settings": {"strategy": "sma_cross", "fast": 10, "nested": {"list": [1, 2.5, None]}},
    "metrics": {"sharpe": 1.25, "psr": None},
    "trades": [
        {"entry_time": "2024-01-01T00:00:00+00:00", "pnl": -1.5, "side": "long"},
        {"entry_time": "2024-01-02T00:00:00+00:00", "pnl": 2.0, "side": "short"},
    ],
    "denials": [],
    "path": "fast",
}


def test_a_report_reads_back_as_the_same_json_with_one_line_per_trade() -> None:
    text = report_json(REPORT)
    assert json.loads(text) == json.loads(json.dumps(REPORT, indent=2))
    lines = text.splitlines()
    for trade in REPORT["trades"]:
        assert f"    {json.dumps(trade)}," in lines or f"    {json.dumps(trade)}" in lines
    assert '    "strategy": "sma_cross",' in lines  # small sections stay indented


def test_a_report_refuses_nan_and_writes_other_values_as_text() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        report_json({"metrics": {"sharpe": math.nan}})
    assert json.loads(report_json({"when": {1, 2}, "empty": {}})) == {
        "when": str({1, 2}),
        "empty": {},
    }
    assert report_json({}) == "{}"


def test_hybrid_flags_override_the_settings_and_the_rest_come_from_them() -> None:
    settings = Settings()
    config = hybrid_config(settings, retrain_every=500, models="logistic, lightgbm")
    assert config.retrain_every == 500
    assert config.min_train == settings.learning.min_train_bars
    assert config.models == ("logistic", "lightgbm")
    assert config.feature_sets == tuple(settings.features.sets)
    default = hybrid_config(settings)
    assert default.retrain_every == settings.learning.retrain_every_bars


def test_order_flow_and_funding_files_add_their_feature_sets_unless_sets_are_given() -> None:
    settings = Settings()
    chosen = hybrid_config(settings, trades="trades.parquet", funding="funding.csv")
    assert chosen.feature_sets[-2:] == ("orderflow", "sentiment")
    given = hybrid_config(settings, sets="atomic", trades="trades.parquet")
    assert given.feature_sets == ("atomic",)


def test_horizons_that_are_not_whole_numbers_are_refused_with_an_example() -> None:
    with pytest.raises(UserInputError, match="whole numbers of candles"):
        hybrid_config(Settings(), horizons="12,one day")
