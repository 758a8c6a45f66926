"""A predict body that breaks a candle rule is refused with 422 naming the field (real service)."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from conftest import NewService, client_of
from fastapi.testclient import TestClient
from real_service import candles_body, run_to_end

from tradebrain.service.prediction import MAX_CANDLES, min_candles
from tradebrain.service.service import TradingService


def _candle(ts: Any = "2024-01-01T00:00:00Z", **values: Any) -> dict[str, Any]:
    return {"timestamp": ts, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
            "volume": 2.0, **values}  # fmt: skip


def _post(client: TestClient, candles: list[dict[str, Any]]) -> Any:
    body = {"symbol": "BTC/USDT", "timeframe": "1h", "candles": candles}
    return client.post("/predict/single", json=body)


def _issues(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    issues: list[dict[str, Any]] = response.json()["detail"]
    return issues


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"high": 10.2}, "high", "high 10.2 is below max(open, close) = 10.5"),
        ({"low": 10.1}, "low", "low 10.1 is above min(open, close) = 10.0"),
    ],
)
def test_candle_with_body_outside_its_range_is_422_naming_high_or_low(
    client: TestClient, values: dict[str, float], field: str, words: str
) -> None:
    issue = _issues(_post(client, [_candle(), _candle("2024-01-01T01:00:00Z", **values)]))[0]
    assert issue["loc"] == ["body", "candles", 1]
    assert words in issue["msg"]


@pytest.mark.parametrize(
    ("field", "value"), [("volume", -1.0), ("open", 0.0), ("close", -5.0), ("high", "abc")]
)
def test_negative_volume_or_non_positive_price_is_422_at_that_field(
    client: TestClient, field: str, value: Any
) -> None:
    issue = _issues(_post(client, [_candle(**{field: value})]))[0]
    assert issue["loc"] == ["body", "candles", 0, field]


@pytest.mark.parametrize(
    ("field", "value"), [("close", "30000"), ("open", True), ("high", "11"), ("volume", "2")]
)
def test_a_price_or_volume_sent_as_text_or_a_boolean_is_422_not_converted(
    client: TestClient, field: str, value: Any
) -> None:
    issue = _issues(_post(client, [_candle(**{field: value})]))[0]
    assert issue["loc"] == ["body", "candles", 0, field]
    assert issue["type"] == "float_type"


def test_whole_numbers_are_prices_too(client: TestClient) -> None:
    response = _post(client, [_candle(open=10, high=11, low=9, close=10, volume=0)])
    assert response.status_code == 422  # one candle is too few, but every field was read
    assert "send between" in response.json()["detail"]


def test_infinite_price_is_422_at_that_field(client: TestClient) -> None:
    content = (
        '{"symbol": "BTC/USDT", "timeframe": "1h", "candles": [{"timestamp": 0, '
        '"open": 1, "high": Infinity, "low": 1, "close": 1, "volume": 1}]}'
    )
    response = client.post(
        "/predict/single", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "candles", 0, "high"]


def test_timestamps_out_of_order_are_422_naming_both_candles(client: TestClient) -> None:
    candles = [_candle("2024-01-01T01:00:00Z"), _candle("2024-01-01T01:00:00+00:00")]
    issue = _issues(_post(client, candles))[0]
    assert issue["loc"] == ["body", "candles"]
    assert "candles[1].timestamp" in issue["msg"] and "candles[0].timestamp" in issue["msg"]


@pytest.mark.parametrize("timestamp", ["yesterday", -1, 10**20, True, 1.5])
def test_unreadable_timestamp_is_422_at_the_timestamp(client: TestClient, timestamp: Any) -> None:
    issue = _issues(_post(client, [_candle(timestamp)]))[0]
    assert issue["loc"] == ["body", "candles", 0, "timestamp"]


def test_epoch_milliseconds_offsets_and_naive_times_are_read_as_the_same_instants(
    client: TestClient, service: TradingService
) -> None:
    history = service.feed.history("BTC/USDT", 700, None)
    candles = candles_body(history)
    plus_one = timezone(timedelta(hours=1))
    for i, (candle, moment) in enumerate(zip(candles, history["timestamp"], strict=True)):
        candle["timestamp"] = [
            int(moment.timestamp() * 1000),  # epoch milliseconds
            moment.astimezone(plus_one).isoformat(),  # the same instant at +01:00
            moment.replace(tzinfo=None).isoformat(),  # naive: UTC
        ][i % 3]
    mixed = _post(client, candles)
    assert mixed.status_code == 200, mixed.text
    assert mixed.json() == _post(client, candles_body(history)).json()


def test_unknown_keys_in_a_candle_are_refused(client: TestClient) -> None:
    issue = _issues(_post(client, [_candle(vol=3)]))[0]
    assert issue["loc"] == ["body", "candles", 0, "vol"]


def test_empty_candle_list_is_refused_and_null_means_latest(client: TestClient) -> None:
    assert _issues(_post(client, []))[0]["loc"] == ["body", "candles"]
    assert _post(client, None).status_code == 200  # type: ignore[arg-type]


@pytest.mark.parametrize("timeframe", ["", "1x", "0h", "hour"])
def test_malformed_timeframe_is_422_at_the_timeframe(client: TestClient, timeframe: str) -> None:
    response = client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": timeframe})
    assert _issues(response)[0]["loc"] == ["body", "timeframe"]


def test_too_few_candles_is_the_services_422_message(
    client: TestClient, service: TradingService
) -> None:
    response = _post(client, [_candle()])
    assert response.status_code == 422
    needed = min_candles(service.runner.bundle)
    assert response.json() == {
        "detail": f"send between {needed} and {MAX_CANDLES} candles (the models' features need "
        f"{needed - 1} candles of history before the last one); got 1"
    }


def test_a_decision_on_the_fewest_candles_accepted_knows_its_regime(
    client: TestClient, service: TradingService
) -> None:
    history = service.feed.history("BTC/USDT", min_candles(service.runner.bundle), None)
    response = _post(client, candles_body(history))
    assert response.status_code == 200, response.text
    assert response.json()["regime"] != "unknown", response.json()["reasons"][0]


def test_candles_that_start_without_a_trade_get_a_decision(
    client: TestClient, service: TradingService
) -> None:
    candles = candles_body(service.feed.history("BTC/USDT", 700, None))
    price = candles[0]["open"]
    for candle in candles[:2]:
        candle.update(open=price, high=price, low=price, close=price, volume=0.0)
    response = _post(client, candles)
    assert response.status_code == 200, response.text


def test_candles_ending_in_a_day_without_volume_get_a_decision(
    client: TestClient, service: TradingService
) -> None:
    candles = candles_body(service.feed.history("BTC/USDT", 700, None))
    for candle in candles[-24:]:
        candle["volume"] = 0.0
    response = _post(client, candles)
    assert response.status_code == 200, response.text


def test_candles_with_a_gap_are_refused_saying_what_to_send_not_a_cli_flag(
    client: TestClient, service: TradingService
) -> None:
    candles = candles_body(service.feed.history("BTC/USDT", 700, None))
    del candles[300]
    response = _post(client, candles)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert (
        "1 missing 1h candle(s); send every candle of the span: the API accepts no gaps" in detail
    )
    assert "--allow-gaps" not in detail


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"symbol": "BTC/USDT", "timeframe": "1h"', "Expecting ',' delimiter at character 40"),
        (b"nope", "Expecting value at character 0"),
    ],
)
def test_a_body_that_is_not_json_is_400_as_the_openapi_document_says(
    client: TestClient, body: bytes, why: str
) -> None:
    response = client.post(
        "/predict/single", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"the request body is not valid JSON ({why}); "
        "send a UTF-8 JSON object with Content-Type: application/json"
    )
    responses = client.app.openapi()["paths"]["/predict/single"]["post"]["responses"]  # type: ignore[attr-defined]
    assert "400" in responses


def test_a_body_that_is_not_utf_8_is_400_too(client: TestClient) -> None:
    response = client.post(
        "/predict/batch", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_while_every_prediction_worker_is_busy_a_request_with_candles_is_429_with_retry_after(
    new_service: NewService,
) -> None:
    import threading
    import time

    from tradebrain.service.prediction_pool import PredictionPool

    service = run_to_end(new_service())
    service.predictions = PredictionPool(workers=1, queue=0)
    candles = candles_body(service.feed.history("BTC/USDT", 700, None))
    on_candles = {"symbol": "BTC/USDT", "timeframe": "1h", "candles": candles}
    with client_of(service) as client:
        assert client.post("/predict/single", json=on_candles).status_code == 200
        busy = threading.Thread(target=service.predictions.run, args=(time.sleep, 3.0))
        busy.start()
        while service.predictions.held == 0:
            time.sleep(0.01)
        for path, body in [
            ("/predict/single", on_candles),
            ("/predict/batch", {"requests": [on_candles]}),
        ]:
            refused = client.post(path, json=body)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            assert "try again in" in refused.json()["detail"]
        live = client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": "1h"})
        assert live.status_code == 200  # the live decision needs no worker
        busy.join()
        assert client.post("/predict/single", json=on_candles).status_code == 200
