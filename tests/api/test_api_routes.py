"""Every route answers with the real service's data, in the documented shape.

The shared service has traded 1200 candles of two symbols and finished; it is only read here
(control changes are in ``test_api_control.py``, each on a service of its own).
"""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import version
from typing import Any

import pytest
from builders import make_candles
from conftest import TRADED_CANDLES, client_of
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from real_service import CASH, RUN, SYMBOLS, TIMEFRAME, WARMUP, candles_body

from tradebrain.api.schemas import Decision
from tradebrain.service.service import TradingService

DECISION_KEYS = set(Decision.model_fields)
MODELS = {"logistic": "LogisticModel", "lightgbm": "LightGBMModel"}


def _same_decision(answer: dict[str, Any], decided: dict[str, Any] | None) -> bool:
    """Whether the API's answer is the service's decision (timestamps compared as instants)."""
    assert decided is not None
    return Decision.model_validate(answer) == Decision.model_validate(decided)


def _assert_is_a_whole_decision(body: dict[str, Any], symbol: str) -> None:
    assert set(body) == DECISION_KEYS
    assert body["symbol"] == symbol and body["timeframe"] == TIMEFRAME
    assert body["action"] in ("buy", "sell", "hold", "exit")
    assert set(body["votes"]) == set(MODELS)
    for probabilities in [*body["votes"].values(), body["proba"]]:
        assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1.0)
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["reasons"] and all(isinstance(r, str) and r for r in body["reasons"])
    assert sum(body["family_weights"].values()) == pytest.approx(1.0)


def test_health_says_ok_with_mode_version_and_phase(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["mode"] == "paper"
    assert body["version"] == version("tradebrain")
    assert body["phase"] == "finished"  # keys beyond the contract pass through


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_live_decision_of_a_symbol_is_its_decision_on_the_last_candle(
    client: TestClient, service: TradingService, symbol: str
) -> None:
    response = client.get("/api/ai/live", params={"symbol": symbol})
    assert response.status_code == 200
    body = response.json()
    _assert_is_a_whole_decision(body, symbol)
    last = service.store.last_candle(RUN, symbol, TIMEFRAME)
    assert last is not None
    assert datetime.fromisoformat(body["timestamp"]) == last.open_time
    assert body["price"] == last.close
    assert _same_decision(body, service.live_decision(symbol))


def test_live_decision_without_a_symbol_is_the_newest_one(client: TestClient) -> None:
    body = client.get("/api/ai/live").json()
    newest = max(client.get("/predict/top").json(), key=lambda d: d["timestamp"])
    assert body["timestamp"] == newest["timestamp"]
    assert body["symbol"] in SYMBOLS


def test_live_decision_of_an_unknown_symbol_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/api/ai/live", params={"symbol": "DOGE/USDT"})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "DOGE/USDT" in detail and "BTC/USDT" in detail


def test_a_service_still_warming_up_says_so_and_refuses_to_predict(
    unstarted_service: TradingService,
) -> None:
    with client_of(unstarted_service) as client:
        assert client.get("/api/ai/live").json() == {"status": "warming_up"}
        status = client.get("/api/ai/status").json()
        assert status["warming_up"] is True and status["models"] == {}
        assert client.get("/predict/top").json() == []
        assert client.get("/models/list").json() == []
        assert client.get("/api/equity").json() == {
            "timestamps": [], "equity": [], "buy_and_hold": []
        }  # fmt: skip
        refused = client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": "1h"})
    assert refused.status_code == 422
    assert "warming up" in refused.json()["detail"]


def test_ai_status_reports_candles_models_decisions_and_control(
    client: TestClient, service: TradingService
) -> None:
    body = client.get("/api/ai/status").json()
    assert body["symbols"] == list(SYMBOLS) and body["timeframe"] == TIMEFRAME
    assert body["warming_up"] is False and body["phase"] == "finished"
    assert body["candles_loaded"] == dict.fromkeys(SYMBOLS, WARMUP + TRADED_CANDLES)
    assert body["decisions"] == len(SYMBOLS) * TRADED_CANDLES
    assert body["trades_processed"] == len(service.trades(limit=1000)) > 0
    assert body["models"] == {name: {"ready": True, "kind": kind} for name, kind in MODELS.items()}
    assert body["control"]["state"] == "running"


def test_learning_status_reports_the_training_and_the_schedule(
    client: TestClient, service: TradingService
) -> None:
    body = client.get("/api/ai/learning_status").json()
    assert body["retrain_every_bars"] == service.settings.learning.retrain_every_bars
    assert body["candles_since_training"] >= TRADED_CANDLES
    assert body["trained_on"] > 0
    assert body["trained_at"] is not None


def test_candles_since_training_counts_bars_like_the_retraining_schedule(
    client: TestClient,
) -> None:
    body = client.get("/api/ai/learning_status").json()
    assert body["candles_since_training"] == TRADED_CANDLES


def test_models_list_names_every_model_ready(client: TestClient) -> None:
    body = client.get("/models/list").json()
    assert {m["id"]: m["kind"] for m in body} == MODELS
    assert all(m["ready"] and m["family"] == "tabular" and m["n_features"] > 0 for m in body)


def test_model_status_includes_its_training_record(client: TestClient) -> None:
    body = client.get("/models/lightgbm/status").json()
    assert body["id"] == "lightgbm"
    assert body["record"]["rows"] > 0
    assert len(body["record"]["feature_names"]) == body["n_features"]


def test_unknown_model_status_is_404_with_a_message(client: TestClient) -> None:
    response = client.get("/models/nope/status")
    assert response.status_code == 404
    assert response.json() == {"detail": "no model named 'nope'; GET /models/list names the models"}


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_predict_single_by_symbol_gives_its_live_decision(
    client: TestClient, service: TradingService, symbol: str
) -> None:
    response = client.post("/predict/single", json={"symbol": symbol, "timeframe": "1h"})
    assert response.status_code == 200
    assert _same_decision(response.json(), service.live_decision(symbol))


def test_predict_single_on_700_candles_decides_on_the_last_one(
    client: TestClient, service: TradingService
) -> None:
    history = service.feed.history("BTC/USDT", 700, None)
    body = {"symbol": "BTC/USDT", "timeframe": "1h", "candles": candles_body(history)}
    response = client.post("/predict/single", json=body)
    assert response.status_code == 200, response.text
    decided = response.json()
    _assert_is_a_whole_decision(decided, "BTC/USDT")
    assert datetime.fromisoformat(decided["timestamp"]) == history["timestamp"][-1]
    assert decided["price"] == history["close"][-1]


def test_predict_with_a_timeframe_the_service_lacks_is_422_with_its_message(
    client: TestClient,
) -> None:
    response = client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": "5m"})
    assert response.status_code == 422
    assert response.json() == {"detail": "the service's models work on 1h candles, not 5m"}


def test_predict_of_an_unknown_symbol_is_404_naming_it(client: TestClient) -> None:
    response = client.post("/predict/single", json={"symbol": "DOGE/USDT", "timeframe": "1h"})
    assert response.status_code == 404
    assert "DOGE/USDT" in response.json()["detail"]


def test_predict_batch_answers_each_request_in_order(
    client: TestClient, service: TradingService
) -> None:
    candles = candles_body(service.feed.history("BTC/USDT", 700, None))
    on_candles = {"symbol": "BTC/USDT", "timeframe": "1h", "candles": candles}
    requests = [{"symbol": "ETH/USDT", "timeframe": "1h"}, on_candles]
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 200, response.text
    eth, btc = response.json()
    assert _same_decision(eth, service.live_decision("ETH/USDT"))
    assert btc == client.post("/predict/single", json=on_candles).json()


def test_predict_batch_names_the_index_of_the_refused_request(client: TestClient) -> None:
    requests = [
        {"symbol": "BTC/USDT", "timeframe": "1h"},
        {"symbol": "DOGE/USDT", "timeframe": "1h"},
    ]
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("requests[1]: 'DOGE/USDT' is not served")


def test_predict_batch_of_more_than_twenty_is_refused(client: TestClient) -> None:
    requests = [{"symbol": "BTC/USDT", "timeframe": "1h"}] * 21
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "requests"]


def test_predict_top_ranks_by_confidence_and_honours_the_limit(
    client: TestClient, service: TradingService
) -> None:
    ranked = client.get("/predict/top").json()
    assert sorted(d["symbol"] for d in ranked) == sorted(SYMBOLS)
    assert [d["confidence"] for d in ranked] == sorted((d["confidence"] for d in ranked),
                                                       reverse=True)  # fmt: skip
    for decided in ranked:
        assert _same_decision(decided, service.live_decision(decided["symbol"]))
    assert client.get("/predict/top", params={"limit": 1}).json() == ranked[:1]


def test_predict_top_limit_outside_1_to_100_is_422(client: TestClient) -> None:
    for limit in (0, 101):
        response = client.get("/predict/top", params={"limit": limit})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]


def test_positions_are_marked_at_the_last_close(
    client: TestClient, service: TradingService
) -> None:
    positions = client.get("/api/positions").json()
    assert [p["symbol"] for p in positions] == [p.symbol for p in service.store.positions(RUN)]
    assert positions, "the seeded run ends holding a position"
    for held in positions:
        last = service.store.last_candle(RUN, held["symbol"], TIMEFRAME)
        assert last is not None and held["mark_price"] == last.close
        sign = 1 if held["side"] == "long" else -1
        move = held["mark_price"] - held["entry_price"]
        assert held["unrealized_pnl"] == pytest.approx(sign * held["quantity"] * move)


def test_trades_are_newest_first_and_honour_the_limit(client: TestClient) -> None:
    every = client.get("/api/trades", params={"limit": 1000}).json()
    assert len(every) >= 2
    exits = [t["exit_time"] for t in every]
    assert exits == sorted(exits, reverse=True)
    assert client.get("/api/trades", params={"limit": 2}).json() == every[:2]
    assert all(t["exit_reason"] and t["entry_time"] <= t["exit_time"] for t in every)


def test_equity_has_one_point_per_candle_with_buy_and_hold_from_the_cash(
    client: TestClient,
) -> None:
    assert len(client.get("/api/equity").json()["equity"]) == min(1000, TRADED_CANDLES)
    equity = client.get("/api/equity", params={"limit": 100_000}).json()
    assert len(equity["timestamps"]) == len(equity["equity"]) == TRADED_CANDLES
    assert len(equity["buy_and_hold"]) == TRADED_CANDLES
    assert equity["timestamps"] == sorted(equity["timestamps"])
    assert equity["buy_and_hold"][0] == pytest.approx(CASH)
    assert len(set(equity["buy_and_hold"])) > 1  # it moves with the market
    tail = client.get("/api/equity", params={"limit": 50}).json()
    assert tail == {key: values[-50:] for key, values in equity.items()}


def test_control_routes_refuse_get(client: TestClient) -> None:
    assert client.get("/api/control/pause").status_code == 405


def test_metrics_count_every_decision_and_its_latency(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {"tradebrain_decisions", "tradebrain_decision_latency_seconds"} <= set(families)
    assert {"tradebrain_equity", "tradebrain_open_positions"} <= set(families)
    made = len(SYMBOLS) * TRADED_CANDLES
    counted = [s for s in families["tradebrain_decisions"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in counted) == made
    assert {s.labels["symbol"] for s in counted} == set(SYMBOLS)
    latency = {s.name: s.value for s in families["tradebrain_decision_latency_seconds"].samples
               if not s.labels}  # fmt: skip
    assert latency["tradebrain_decision_latency_seconds_count"] == made
    assert 0 < latency["tradebrain_decision_latency_seconds_sum"] < made  # under 1 s each


def test_a_decision_on_sent_candles_is_the_one_the_services_own_models_make(
    client: TestClient, service: TradingService
) -> None:
    from tradebrain.service.prediction import decide_on_candles

    history = service.feed.history("ETH/USDT", 700, None)
    body = {"symbol": "ETH/USDT", "timeframe": "1h", "candles": candles_body(history)}
    answer = client.post("/predict/single", json=body).json()  # decided in a worker process
    here = decide_on_candles(service.runner.bundle, history, "ETH/USDT", "1h", service.settings)
    assert _same_decision(answer, here)


def test_a_batch_of_more_than_20000_candles_in_all_is_422_before_any_work(
    client: TestClient, service: TradingService
) -> None:
    candles = candles_body(make_candles(5000))
    requests = [{"symbol": "BTC/USDT", "timeframe": "1h", "candles": candles}] * 5
    held = service.predictions.held
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body", "requests"]
    assert "the batch holds 25000 candles; at most 20000 in all" in issue["msg"]
    assert service.predictions.held == held
