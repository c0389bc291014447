"""SAM 2's video predictor: box prompts on a track's keyframes, masks on its other frames by SAM 2's own
memory attention instead of our carrying (curation/models/keyframes.py).

SAM 2 encodes each frame once and propagates a prompted mask through the clip, forward and then
backward, which is what lets it run at tens of frames/s on a GPU where an image segmenter per frame
cannot (issue 21). It reads a clip from a folder of JPEG files (its own input path), so the frames go
through one JPEG round trip at quality 95. Without weights it is random-init like our other models.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from curation.models.weights import Family, ResolvedWeights, load_state_dict, seeded_init, url_downloader

SAM2_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
SAM2_URLS = {  # SAM 2.1's published checkpoints (its README)
    "sam2.1_hiera_tiny": SAM2_BASE + "sam2.1_hiera_tiny.pt",
    "sam2.1_hiera_small": SAM2_BASE + "sam2.1_hiera_small.pt",
    "sam2.1_hiera_base_plus": SAM2_BASE + "sam2.1_hiera_base_plus.pt",
    "sam2.1_hiera_large": SAM2_BASE + "sam2.1_hiera_large.pt",
}
SAM2 = Family("sam2", url_downloader(SAM2_URLS))
SAM2_CONFIGS = {"hiera_t": "sam2.1_hiera_t", "hiera_s": "sam2.1_hiera_s", "hiera_b+": "sam2.1_hiera_b+",
                "hiera_l": "sam2.1_hiera_l"}
JPEG_QUALITY = 95


def build_video_predictor(arch: str, image_size: int, resolved: ResolvedWeights, device):
    """SAM 2.1's video predictor at `image_size` (1024 for real weights; the memory attention's grid follows)."""
    from sam2.build_sam import build_sam2_video_predictor

    grid = image_size // 16
    overrides = [f"++model.image_size={image_size}",
                 f"++model.memory_attention.layer.self_attention.feat_sizes=[{grid},{grid}]",
                 f"++model.memory_attention.layer.cross_attention.feat_sizes=[{grid},{grid}]"]
    with seeded_init():
        predictor = build_sam2_video_predictor(f"configs/sam2.1/{SAM2_CONFIGS[arch]}.yaml", None, device="cpu",
                                               hydra_overrides_extra=overrides)
    if resolved.path is not None:  # not random-init; SAM 2 checkpoints keep the state dict under "model"
        state = load_state_dict(resolved.path)
        predictor.load_state_dict(state.get("model", state))
    return predictor.to(device).eval()


def track_masks(predictor, frames: np.ndarray, prompts: list[dict[int, list[float]]]) -> list[dict[int, np.ndarray]]:
    """Per track, bool (H, W) masks on every frame of the clip from its xyxy box prompts on some frames.

    Each track is prompted and propagated alone (forward from its first prompt, then backward), so one
    track's memory does not hold another's; every frame is encoded again per track.
    """
    import torch

    out: list[dict[int, np.ndarray]] = []
    with tempfile.TemporaryDirectory(prefix="sam2-frames-") as tmp:
        for i, frame in enumerate(frames):
            cv2.imwrite(str(Path(tmp) / f"{i}.jpg"), np.ascontiguousarray(frame[:, :, ::-1]),
                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        with torch.inference_mode():
            state = predictor.init_state(tmp)
            for boxes in prompts:
                predictor.reset_state(state)
                for f, box in sorted(boxes.items()):
                    predictor.add_new_points_or_box(state, frame_idx=f, obj_id=0, box=np.asarray(box, np.float32))
                masks: dict[int, np.ndarray] = {}
                for reverse in (False, True):
                    for f, _, logits in predictor.propagate_in_video(state, reverse=reverse):
                        masks.setdefault(int(f), (logits[0, 0] > 0).cpu().numpy())
                out.append(masks)
    return out
