"""The test suite's own rules: in CI, real data must be there and examples are reproducible."""

from __future__ import annotations

from pathlib import Path

import hypothesis
import pytest
from builders import REAL_DATA_REQUIRED, real_file, skip_without_real_data

CI_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "run"


def test_missing_real_data_skips_the_test_on_a_developers_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REAL_DATA_REQUIRED, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such file"):
        skip_without_real_data("no such file")


def test_missing_real_data_fails_the_test_when_ci_requires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REAL_DATA_REQUIRED, "1")
    with pytest.raises(pytest.fail.Exception, match="TRADEBRAIN_REAL_DATA_REQUIRED=1"):
        real_file("not-a-real-file.parquet")


def test_ci_requires_the_real_data_and_the_browser_and_fixes_the_examples() -> None:
    script = CI_SCRIPT.read_text()
    assert "export TRADEBRAIN_REAL_DATA_REQUIRED=1" in script
    assert "export TRADEBRAIN_BROWSER_REQUIRED=1" in script
    assert "export HYPOTHESIS_PROFILE=ci" in script


def test_property_tests_draw_the_same_examples_every_run_without_a_deadline() -> None:
    current = hypothesis.settings()
    assert current.derandomize is True
    assert current.deadline is None
    assert current.database is None
