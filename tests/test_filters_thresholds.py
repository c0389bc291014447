"""Threshold config validation, evaluation and human reject reasons."""

from __future__ import annotations

import dataclasses

import pytest

from filters import FilterError, FilterThresholds, duration_ok, evaluate, reject_reasons, resolution_ok


def test_defaults_are_valid_and_frozen() -> None:
    cfg = FilterThresholds()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.min_blur = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_luminance": 200, "max_luminance": 100},
         "luminance: min_luminance=200 is greater than max_luminance=100"),
        ({"min_width": 4000, "max_width": 1920}, "width: min_width=4000 is greater than max_width=1920"),
        ({"min_duration_s": -1}, "threshold min_duration_s must be >= 0, got -1"),
        ({"max_static": 1.5}, "threshold max_static is a fraction and must be <= 1, got 1.5"),
        ({"min_blur": float("nan")}, "threshold min_blur must be a finite number, got nan"),
        ({"min_blur": "40"}, "threshold min_blur must be a finite number, got '40'"),
        ({"min_blurr": 40}, "unknown threshold(s) min_blurr; known: "),
    ],
)
def test_invalid_config_is_one_clear_line(values: dict, message: str) -> None:
    with pytest.raises(FilterError) as info:
        FilterThresholds.from_dict(values)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_from_dict_overrides_only_given_fields() -> None:
    cfg = FilterThresholds.from_dict({"min_blur": 25.0})
    assert cfg.min_blur == 25.0 and cfg.max_text_overlay == FilterThresholds().max_text_overlay


def test_evaluate_pass_fail_and_no_threshold() -> None:
    cfg = FilterThresholds(min_blur=40.0, max_text_overlay=0.02)
    scores = {"blur": 12.3, "luminance": 120.0, "text_overlay": 0.05, "frame_diff": 3.0, "motion": None}
    assert evaluate(scores, cfg) == {
        "blur": False, "luminance": True, "text_overlay": False, "frame_diff": None, "motion": None,
    }


def test_reject_reasons_one_per_failed_threshold() -> None:
    cfg = FilterThresholds(min_blur=40.0, min_luminance=20.0, max_motion=3.0)
    scores = {"blur": 12.3, "luminance": 5.0, "motion": 4.25, "static": 0.1, "frame_diff": 99.0}
    assert reject_reasons(scores, cfg) == ["blur 12.3 < min 40", "luminance 5 < min 20", "motion 4.25 > max 3"]
    assert reject_reasons({"blur": float("nan")}, cfg) == ["blur is nan"]
    assert evaluate({"blur": float("nan")}, cfg) == {"blur": False}


def test_resolution_and_duration_predicates() -> None:
    cfg = FilterThresholds(
        min_width=256, min_height=144, max_width=3840, max_height=3840, min_duration_s=2, max_duration_s=60
    )
    assert resolution_ok(1920, 1080, cfg) and resolution_ok(256, 144, cfg)
    assert not resolution_ok(200, 1080, cfg)  # too narrow
    assert not resolution_ok(7680, 4320, cfg)  # huge inputs are rejected
    assert reject_reasons({"width": 7680, "height": 4320}, cfg) == ["width 7680 > max 3840", "height 4320 > max 3840"]
    assert duration_ok(2.0, cfg) and duration_ok(60.0, cfg)
    assert not duration_ok(1.5, cfg) and not duration_ok(61.0, cfg)
