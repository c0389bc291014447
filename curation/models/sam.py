"""SAM masks prompted by boxes, through segment-anything's SamPredictor, ultralytics' MobileSAM or SAM 2's
video predictor.

The image backends take one RGB frame and N xyxy boxes and give N bool masks at the frame's size; the
image is embedded once per frame and every box reuses the embedding. For a track, `masks_of_tracks`
runs them on its prompted keyframes and carries the masks to its other frames
(curation/models/keyframes.py); SAM 2 (`sam2-video`) instead propagates the prompts itself
(curation/models/sam2_video.py). Which backend a stage uses is a config choice;
benchmarks/mask_proposer.py --models times the image backends (docs/PERFORMANCE.md, "Object masks").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curation.models.devices import torch_device
from curation.models.keyframes import Carrier, CarryMethod
from curation.models.precision import Precision, autocast
from curation.models.ultralytics_env import download_ultralytics_asset, import_ultralytics
from curation.models.weights import (
    Family,
    ResolvedWeights,
    WeightsConfig,
    load_state_dict,
    resolve_weights,
    seeded_init,
    url_downloader,
)

SAM_URLS = {  # segment-anything's published checkpoints (its README)
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
}
SEGMENT_ANYTHING = Family("sam", url_downloader(SAM_URLS))
MOBILE_SAM = Family("mobile-sam", download_ultralytics_asset)


class SamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["segment-anything", "ultralytics-mobile-sam", "sam2-video"] = "segment-anything"
    arch: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"  # segment-anything's architectures
    sam2_arch: Literal["hiera_t", "hiera_s", "hiera_b+", "hiera_l"] = "hiera_t"  # SAM 2.1's, for sam2-video
    image_size: int = Field(default=1024, ge=64)  # segment-anything and SAM 2; published weights need 1024
    # a SAM_URLS or SAM2_URLS key (e.g. sam2.1_hiera_tiny), a path, or e.g. mobile_sam.pt
    weights: WeightsConfig = WeightsConfig(weights="vit_b")
    batch: int = Field(default=4, ge=1)  # frames per image-encoder call (segment-anything backend; ~3 GB each at 1024)
    device: str = "auto"  # auto: the GPU Ray assigned this actor, else the CPU; or "cpu", "cuda:1", ...
    precision: Precision = "fp32"  # "bf16": autocast on CUDA (segment-anything backend)
    # segment-anything's encoder attention: "fused" computes the same logits in one SDPA call
    # (curation/models/sam_attention.py: 2.6x its bf16 speed on an H200), "library" as the package writes it
    attention: Literal["fused", "library"] = "fused"
    compile: bool = False  # torch.compile the image encoder (another ~1.9x on a GPU; each new batch shape compiles)

    @model_validator(mode="after")
    def _weights_fit(self) -> SamConfig:
        if self.image_size % 16:
            raise ValueError(f"sam.image_size {self.image_size} must be a multiple of 16 (the ViT patch)")
        return self


# (embed dim, depth, heads, global-attention blocks) of segment-anything's ViT encoders (its build_sam.py)
SAM_ARCHS = {"vit_b": (768, 12, 12, (2, 5, 8, 11)), "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
             "vit_h": (1280, 32, 16, (7, 15, 23, 31))}


def build_sam(arch: str, image_size: int):
    """segment-anything's Sam as its build_sam.py makes it, at any input size (1024 for real weights)."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    dim, depth, heads, global_attn = SAM_ARCHS[arch]
    grid = image_size // 16
    encoder = ImageEncoderViT(depth=depth, embed_dim=dim, img_size=image_size, mlp_ratio=4,
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=heads, patch_size=16,
                              qkv_bias=True, use_rel_pos=True, global_attn_indexes=global_attn, window_size=14,
                              out_chans=256)
    prompts = PromptEncoder(embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(image_size, image_size),
                            mask_in_chans=16)
    decoder = MaskDecoder(num_multimask_outputs=3,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
                          transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256)
    return Sam(image_encoder=encoder, prompt_encoder=prompts, mask_decoder=decoder,
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


class SamMasker:
    """Box-prompted masks; `setup()` builds the model (real weights or random-init) on the worker."""

    version = "2"  # 2: frames resized on the device (torch's antialiased bilinear, not PIL's on the host)

    def __init__(self, config: SamConfig) -> None:
        self.config = config
        self.name, self.model_name = {"segment-anything": ("sam", f"sam-{config.arch}"),
                                      "ultralytics-mobile-sam": ("mobile-sam", "mobile-sam"),
                                      "sam2-video": ("sam2", f"sam2.1-{config.sam2_arch}")}[config.backend]
        self.weights_id = ""
        self._predict: Callable[[np.ndarray, list[np.ndarray]], list[np.ndarray]] | None = None  # set by setup()
        self._video = None  # SAM 2's video predictor, set by setup() for sam2-video

    def resolve(self) -> ResolvedWeights:
        """Find the weights (or random-init when allowed); raises WeightsError with how to provide them."""
        from curation.models.sam2_video import SAM2

        family = {"segment-anything": SEGMENT_ANYTHING, "ultralytics-mobile-sam": MOBILE_SAM,
                  "sam2-video": SAM2}[self.config.backend]
        return resolve_weights(self.config.weights, family)

    def setup(self) -> None:
        self.device = torch_device(self.config.device)
        resolved = self.resolve()
        if self.config.backend == "segment-anything":
            self._predict = self._segment_anything(resolved)
        elif self.config.backend == "sam2-video":
            from curation.models.sam2_video import build_video_predictor

            if not resolved.random_init and self.config.image_size != 1024:
                raise ValueError(f"sam.image_size must be 1024 with real weights, got {self.config.image_size}")
            self._video = build_video_predictor(self.config.sam2_arch, self.config.image_size, resolved, self.device)
        else:
            self._predict = self._mobile_sam(resolved)
        self.weights_id = resolved.weights_id

    def _segment_anything(self, resolved: ResolvedWeights):
        import torch
        import torch.nn.functional as F
        from segment_anything import SamPredictor

        if not resolved.random_init and self.config.image_size != 1024:
            raise ValueError(f"sam.image_size must be 1024 with real weights, got {self.config.image_size}")
        with seeded_init():
            model = build_sam(self.config.arch, self.config.image_size)
        if resolved.path is not None:  # not random-init
            model.load_state_dict(load_state_dict(resolved.path))
        if self.config.attention == "fused":
            from curation.models.sam_attention import fuse_encoder_attention  # torch: loaded on the worker only

            fuse_encoder_attention(model.image_encoder)
        predictor = SamPredictor(model.to(self.device).eval())
        encoder = torch.compile(model.image_encoder) if self.config.compile else model.image_encoder

        def predict(frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
            """One image-encoder call for all frames (the encoder is ~90% of SAM's time; batching it is
            ~2x on a GPU), then the prompt decoder per frame on that frame's features."""
            with torch.inference_mode(), autocast(self.device, self.config.precision):
                pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
                size = predictor.transform.get_preprocess_shape(*frames.shape[1:3], self.config.image_size)
                images = F.interpolate(pixels, size, mode="bilinear", align_corners=False, antialias=True
                                       ).round_().clamp_(0, 255)  # (F, 3, h, w), long side image_size, on the device
                features = encoder(model.preprocess(images))  # (F, 256, S/16, S/16)
                out = []
                for frame, feature, frame_boxes in zip(frames, features, boxes):
                    predictor.reset_image()
                    predictor.original_size, predictor.input_size = frame.shape[:2], tuple(images.shape[-2:])
                    predictor.features, predictor.is_image_set = feature[None], True
                    tb = predictor.transform.apply_boxes_torch(torch.as_tensor(frame_boxes, dtype=torch.float32),
                                                               frame.shape[:2])
                    masks, _, _ = predictor.predict_torch(None, None, boxes=tb.to(self.device), multimask_output=False)
                    out.append(masks[:, 0].cpu().numpy())  # (N, H, W) bool
            return out

        return predict

    def _mobile_sam(self, resolved: ResolvedWeights):
        import_ultralytics()
        import torch
        from ultralytics.models.sam import Predictor
        from ultralytics.models.sam.build import build_mobile_sam

        with seeded_init():
            model = build_mobile_sam(checkpoint=None)
        if resolved.path is not None:  # not random-init
            model.load_state_dict(load_state_dict(resolved.path))
        predictor = Predictor(overrides={"task": "segment", "mode": "predict", "imgsz": 1024, "conf": 0.0,
                                         "device": self.device, "save": False, "verbose": False})
        predictor.setup_model(model=model, verbose=False)

        def predict_one(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                predictor.set_image(np.ascontiguousarray(frame[:, :, ::-1]))  # ultralytics wants BGR
                result = predictor(bboxes=boxes.tolist())[0]
            predictor.reset_image()
            if result.masks is None:
                return np.zeros((len(boxes), *frame.shape[:2]), bool)
            return result.masks.data.cpu().numpy().astype(bool)  # (N, H, W)

        return lambda frames, boxes: [predict_one(f, b) for f, b in zip(frames, boxes)]

    def masks(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Bool masks (N, H, W) for xyxy `boxes` (N, 4) in `frame`'s pixels; (0, H, W) for no boxes."""
        return self.masks_of_frames(frame[None], [boxes])[0]

    def masks_of_frames(self, frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        """`masks` for each frame (F, H, W, 3) and its boxes (N_f, 4); the image encoder runs on `batch`
        frames at a time."""
        if self._video is not None:
            raise RuntimeError("sam2-video masks tracks through a clip, not single frames: use masks_of_tracks")
        if self._predict is None:
            raise RuntimeError("SamMasker.setup() was not called")
        out: list[np.ndarray | None] = [None] * len(frames)
        todo = [i for i, b in enumerate(boxes) if len(b)]
        for i in set(range(len(frames))) - set(todo):
            out[i] = np.zeros((0, *frames[i].shape[:2]), bool)
        for start in range(0, len(todo), self.config.batch):
            chunk = todo[start : start + self.config.batch]
            got = self._predict(frames[chunk], [np.asarray(boxes[i], np.float32) for i in chunk])
            for i, m in zip(chunk, got):
                out[i] = m
        return out  # type: ignore[return-value]  # every frame's slot is filled above

    def masks_of_tracks(self, frames: np.ndarray, prompts: list[dict[int, list[float]]], targets: list[list[int]],
                        carry: CarryMethod = "motion") -> list[dict[int, np.ndarray]]:
        """Per track, bool masks on its `targets` frames of `frames` (F, H, W, 3) from its xyxy box `prompts`
        ({frame: box}, at least one): SAM 2 propagates them itself; an image backend segments the prompted
        frames (the encoder once per frame for all tracks there) and `carry` takes the masks to the rest."""
        if self._video is not None:
            from curation.models.sam2_video import track_masks

            got = track_masks(self._video, frames, prompts)
            return [{f: masks[f] for f in wanted} for masks, wanted in zip(got, targets)]
        by_frame: dict[int, list[tuple[int, list[float]]]] = {}
        for i, boxes in enumerate(prompts):
            for f, box in boxes.items():
                by_frame.setdefault(f, []).append((i, box))
        order = sorted(by_frame)
        masks = self.masks_of_frames(frames[order], [np.array([b for _, b in by_frame[f]]) for f in order])
        known: list[dict[int, np.ndarray]] = [{} for _ in prompts]
        for f, frame_masks in zip(order, masks):
            for (i, _), m in zip(by_frame[f], frame_masks):
                known[i][f] = m
        carrier = Carrier(frames, carry)
        return [carrier.carry(k, wanted) for k, wanted in zip(known, targets)]
