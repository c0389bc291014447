"""text_overlay with rapidocr-onnxruntime's bundled weights, on drawn text and on text-free photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from filters import FilterError, get_signal
from filters.ocr import TextOverlay, text_area_fraction


@pytest.fixture(scope="module")
def ocr() -> TextOverlay:
    signal = get_signal("text_overlay")
    signal.setup()
    return signal


def _caption_frame() -> np.ndarray:
    """A photo with a large, clear subtitle burnt into its lower third."""
    frame = cv2.resize(skimage.data.coffee(), (640, 480), interpolation=cv2.INTER_AREA)
    cv2.rectangle(frame, (20, 360), (620, 440), (0, 0, 0), -1)
    cv2.putText(frame, "HELLO WORLD 2026", (40, 420), cv2.FONT_HERSHEY_SIMPLEX, 1.8, (255, 255, 255), 4, cv2.LINE_AA)
    return frame


def test_provenance_names_package_and_bundled_det_model() -> None:
    signal = get_signal("text_overlay")
    assert signal.model_name == "rapidocr-onnxruntime"
    assert signal.weights_id.startswith("1.4.4:det=ch_PP-OCRv4_det_infer.onnx@")
    assert "rec=" in signal.weights_id


def test_drawn_caption_is_found_with_plausible_area(ocr: TextOverlay) -> None:
    frame = _caption_frame()
    boxes = ocr.text_boxes(frame)
    assert boxes, "the caption was not detected"
    ys = np.concatenate([b[:, 1] for b in boxes])
    assert ys.min() > 330 and ys.max() < 470  # found where it was drawn
    area = ocr.compute(np.stack([frame, frame]), 25.0)
    assert 0.02 < area < 600 * 80 / (640 * 480)  # some of the text band, never more than the band


@pytest.mark.parametrize("photo", ["chelsea", "astronaut", "coffee"])
def test_photos_without_text_read_zero(ocr: TextOverlay, photo: str) -> None:
    frame = cv2.resize(getattr(skimage.data, photo)(), (640, 480), interpolation=cv2.INTER_AREA)
    assert ocr.compute(frame[None], 25.0) == 0.0


def test_compute_before_setup_is_a_clear_error() -> None:
    with pytest.raises(FilterError, match="call setup"):
        get_signal("text_overlay").compute(_caption_frame()[None], 25.0)


def test_text_area_fraction_unions_overlapping_boxes() -> None:
    box = np.array([[0, 0], [49, 0], [49, 49], [0, 49]], np.float32)
    assert text_area_fraction((100, 100), [box]) == pytest.approx(0.25)
    assert text_area_fraction((100, 100), [box, box + 25]) == pytest.approx((2 * 2500 - 625) / 10000)
    assert text_area_fraction((100, 100), []) == 0.0
