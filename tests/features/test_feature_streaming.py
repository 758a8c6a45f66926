"""The live path (one candle at a time) reproduces the batch values; warm-ups are honest."""

from __future__ import annotations

import numpy as np
import polars as pl
from lookahead import as_matrix, column_scales, mismatched

from tradebrain.features import LiveFeatureEngine, compute_features, list_features


def test_feeding_candles_one_at_a_time_reproduces_the_batch_features(
    market: pl.DataFrame,
) -> None:
    batch = compute_features(market, threads=1)
    engine = LiveFeatureEngine()
    rows = [engine.update(candle) for candle in market.to_dicts()]
    live = pl.DataFrame(rows, schema={name: pl.Float64 for name in engine.feature_names})
    assert engine.feature_names == batch.columns[1:]
    expected = as_matrix(batch)
    got = live.fill_null(np.nan).to_numpy()
    names = np.array(engine.feature_names)
    assert names[mismatched(got, expected, column_scales(expected))].tolist() == []


def test_live_engine_keeps_only_a_short_tail_of_history(market: pl.DataFrame) -> None:
    engine = LiveFeatureEngine()
    for candle in market.head(engine.tail_length * 3).to_dicts():
        engine.update(candle)
    assert engine._end - engine._begin <= engine.tail_length


def test_live_engine_warmed_from_history_continues_like_batch(market: pl.DataFrame) -> None:
    batch = as_matrix(compute_features(market, threads=1))
    engine = LiveFeatureEngine()
    split = market.height - 50
    engine.warm_up(market.head(split))
    rows = [engine.update(candle) for candle in market.tail(50).to_dicts()]
    got = pl.DataFrame(rows).fill_null(np.nan).to_numpy()
    assert not mismatched(got, batch[split:], column_scales(batch)).any()


def test_values_after_warmup_do_not_depend_on_where_history_started(
    market: pl.DataFrame,
) -> None:
    full = compute_features(market, threads=1)
    reference = as_matrix(full)
    scale = column_scales(reference)
    warmups = np.array([row["warmup"] for row in list_features() if row["name"] in full.columns])
    names = np.array(full.columns[1:])
    for offset in (1, 7, 100, 333):
        later = as_matrix(compute_features(market.slice(offset), threads=1))
        rows = np.arange(later.shape[0])[:, None]
        settled = rows >= warmups[None, :]
        got = np.where(settled, later, reference[offset:])
        assert names[mismatched(got, reference[offset:], scale)].tolist() == [], offset
