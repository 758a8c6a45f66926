"""Every route answers with the service's data in the documented shape."""

from __future__ import annotations

from fastapi.testclient import TestClient
from service_double import SYMBOLS, ServiceDouble

from tradebrain.api import create_app
from tradebrain.api.schemas import Decision

DECISION_KEYS = set(Decision.model_fields)


def test_health_says_ok_with_mode_and_version(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["mode"] == "paper"
    assert body["version"] == "0.1.0"


def test_live_decision_has_every_contract_key(client: TestClient) -> None:
    response = client.get("/api/ai/live")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == DECISION_KEYS
    assert body["action"] == "buy"
    assert body["votes"]["lightgbm"] == [0.15, 0.25, 0.60]
    assert body["reasons"][0].startswith("Models agree")


def test_live_decision_of_a_symbol_is_that_symbols(client: TestClient) -> None:
    body = client.get("/api/ai/live", params={"symbol": "ETH/USDT"}).json()
    assert body["symbol"] == "ETH/USDT"
    assert body["stop"] is None


def test_live_decision_while_warming_up_says_warming_up() -> None:
    app = create_app(ServiceDouble(warming_up=True), token=None, require_token=False)
    with TestClient(app) as client:
        response = client.get("/api/ai/live")
    assert response.status_code == 200
    assert response.json() == {"status": "warming_up"}


def test_live_decision_of_an_unknown_symbol_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/api/ai/live", params={"symbol": "DOGE/USDT"})
    assert response.status_code == 404
    assert "DOGE/USDT" in response.json()["detail"]


def test_ai_status_reports_models_symbols_and_control(client: TestClient) -> None:
    body = client.get("/api/ai/status").json()
    assert body["symbols"] == list(SYMBOLS)
    assert body["models"]["tcn"] == {"ready": True, "kind": "TCNModel"}
    assert body["control"]["state"] == "running"
    assert body["phase"] == "running"  # keys beyond the contract pass through


def test_learning_status_reports_the_retraining_schedule(client: TestClient) -> None:
    body = client.get("/api/ai/learning_status").json()
    assert body["retrain_every_bars"] == 500
    assert body["next_retrain_in"] == 300


def test_models_list_names_every_model(client: TestClient) -> None:
    body = client.get("/models/list").json()
    assert [m["id"] for m in body] == ["lightgbm", "tcn", "momentum"]
    assert body[1]["family"] == "sequence"


def test_model_status_includes_its_training_record(client: TestClient) -> None:
    body = client.get("/models/tcn/status").json()
    assert body["id"] == "tcn"
    assert body["record"]["rows"] == 1500


def test_unknown_model_status_is_404_with_a_message(client: TestClient) -> None:
    response = client.get("/models/nope/status")
    assert response.status_code == 404
    assert response.json() == {"detail": "no model named 'nope'; GET /models/list names the models"}


def test_predict_single_without_candles_gives_the_live_decision(
    client: TestClient, service: ServiceDouble
) -> None:
    response = client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": "1h"})
    assert response.status_code == 200
    assert response.json()["action"] == "buy"
    assert service.predictions == [("BTC/USDT", "1h", None)]


def test_predict_single_passes_candles_as_a_utc_frame(
    client: TestClient, service: ServiceDouble
) -> None:
    candles = [
        {"timestamp": "2024-01-01T00:00:00Z", "open": 10, "high": 11, "low": 9, "close": 10.5,
         "volume": 3},
        {"timestamp": 1704070800000, "open": 10.5, "high": 12, "low": 10, "close": 11.5,
         "volume": 0},
        {"timestamp": "2024-01-01T02:00:00", "open": 11.5, "high": 11.5, "low": 11, "close": 11,
         "volume": 1},
    ]  # fmt: skip
    body = {"symbol": "ETH/USDT", "timeframe": "1h", "candles": candles}
    response = client.post("/predict/single", json=body)
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["price"] == 11.0
    assert decided["timestamp"].startswith("2024-01-01T02:00:00")
    assert service.predictions == [("ETH/USDT", "1h", 3)]


def test_predict_with_a_timeframe_the_service_lacks_is_422_with_its_message(
    client: TestClient,
) -> None:
    response = client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": "5m"})
    assert response.status_code == 422
    assert response.json() == {"detail": "the service's models work on 1h candles, not 5m"}


def test_predict_of_an_unknown_symbol_is_404(client: TestClient) -> None:
    response = client.post("/predict/single", json={"symbol": "XRP/USDT", "timeframe": "1h"})
    assert response.status_code == 404
    assert "XRP/USDT" in response.json()["detail"]


def test_predict_batch_answers_each_request_in_order(client: TestClient) -> None:
    requests = [{"symbol": s, "timeframe": "1h"} for s in ("ETH/USDT", "BTC/USDT")]
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 200
    assert [d["symbol"] for d in response.json()] == ["ETH/USDT", "BTC/USDT"]


def test_predict_batch_names_the_index_of_the_refused_request(client: TestClient) -> None:
    requests = [
        {"symbol": "BTC/USDT", "timeframe": "1h"},
        {"symbol": "BTC/USDT", "timeframe": "4h"},
    ]
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("requests[1]: ")


def test_predict_batch_of_more_than_twenty_is_refused(client: TestClient) -> None:
    requests = [{"symbol": "BTC/USDT", "timeframe": "1h"}] * 21
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "requests"]


def test_predict_top_ranks_by_confidence_and_honours_the_limit(client: TestClient) -> None:
    body = client.get("/predict/top", params={"limit": 1}).json()
    assert [d["symbol"] for d in body] == ["BTC/USDT"]
    assert len(client.get("/predict/top").json()) == 2


def test_predict_top_limit_outside_1_to_100_is_422(client: TestClient) -> None:
    for limit in (0, 101):
        response = client.get("/predict/top", params={"limit": limit})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]


def test_positions_trades_and_equity_have_their_shapes(client: TestClient) -> None:
    positions = client.get("/api/positions").json()
    assert positions[0]["side"] == "long" and positions[0]["unrealized_pnl"] == 22.5
    trades = client.get("/api/trades", params={"limit": 2}).json()
    assert len(trades) == 2 and trades[0]["exit_reason"] == "target"
    equity = client.get("/api/equity", params={"limit": 50}).json()
    assert len(equity["timestamps"]) == len(equity["equity"]) == len(equity["buy_and_hold"]) == 50


def test_pause_then_resume_moves_the_control_state(
    client: TestClient, service: ServiceDouble
) -> None:
    paused = client.post("/api/control/pause").json()
    assert paused["state"] == "paused"
    assert service.control()["state"] == "paused"
    assert client.get("/api/ai/status").json()["control"]["state"] == "paused"
    assert client.post("/api/control/resume").json()["state"] == "running"


def test_emergency_stop_closes_positions_and_stops(client: TestClient) -> None:
    stopped = client.post("/api/control/emergency_stop").json()
    assert stopped["state"] == "emergency_stop"
    assert stopped["reason"] == "emergency stop pulled by the operator"
    assert client.get("/api/positions").json() == []


def test_control_routes_refuse_get(client: TestClient) -> None:
    assert client.get("/api/control/pause").status_code == 405


def test_metrics_are_prometheus_text_with_the_service_metric_names(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    for name in (
        "tradebrain_decisions_total",
        "tradebrain_decision_latency_seconds_bucket",
        "tradebrain_feed_lag_seconds",
        "tradebrain_equity",
        "tradebrain_open_positions",
    ):
        assert name in text
    assert 'tradebrain_decisions_total{action="buy",symbol="BTC/USDT"} 1.0' in text
