"""The bench's yardstick (bench/yardstick.py): every section's rate read against the two-caller rate of the run."""

from __future__ import annotations

from typing import Any

import pytest

from bench import yardstick

pytestmark = pytest.mark.fast


@pytest.fixture(autouse=True)
def measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yardstick, "_measured", {"photos": {"two_callers_images_per_s": 120.0,
                                                            "lone_images_per_s": 95.0, "lone_p50_ms": 8.0}})


@pytest.mark.parametrize(("section", "result", "ratio"), [
    ("http", {"images_per_s": {"1": 60.0, "2": 108.0}}, 0.9),
    ("jobs", {"images_per_s": 90.0}, 0.75),
    ("bundles", {"classify": {"cold_start_s": 1.0}}, None),
    ("training", {"accuracy": 0.9}, None),  # a section whose figures changed shape: n/a, never a crash
])
def test_a_section_reports_its_ratio(section: str, result: dict[str, Any], ratio: float | None,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    yardstick.report(section, result)
    assert result["yardstick"]["images_per_s"] == 120.0
    assert result["yardstick"]["ratio"] == (pytest.approx(ratio) if ratio is not None else None)
    printed = capsys.readouterr().out
    assert "yardstick" in printed and (f"{ratio:.2f}x" in printed if ratio is not None else "n/a" in printed)


def test_a_section_with_its_own_yardstick_is_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    result = {"yardstick": {"images_per_s": 100.0, "set": "640x427 JPEG", "ratio": 0.95}}
    yardstick.report("throughput", result)
    assert result["yardstick"]["ratio"] == 0.95 and capsys.readouterr().out == ""
