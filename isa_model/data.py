"""Edit pairs from the `edit_pairs` manifest as training batches.

Rows are read through `manifests.read_table` (one split), clips decoded through `manifests.media` (decord,
PyAV fallback), `frames` frames sampled at a stride, resized to cover the bucket and cropped (random crop for
training, centre for validation), instructions tokenised by the model's open_clip tokenizer. Every random
choice comes from (seed, epoch, row), so a batch depends only on the seed and the position, and a resumed
run sees the same batches. Training reads the rows of a pinned snapshot, so a resume sees the same rows.
Every URI goes through `manifests.uris.local_file` (resolve_uri's checks); a pair whose URI is refused there
(absolute, `../` out of the root) or whose files are missing or undecodable is skipped and counted, as
`sample --pairs` does. Under an `s3://` root each file is downloaded once into a local cache
(manifests.storage.cached_copy) by the DataLoader worker that loads its pair, so the downloads of the
next batches overlap training (the loader's prefetch) and later epochs read the cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pyarrow.dataset as ds
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from isa_model.augment import augment_choice, flip
from isa_model.config import ModelConfig
from isa_model.layout import instruction_layout
from manifests import Snapshot, read_table
from manifests.media.decode import read_frames
from manifests.media.masks import open_mask_file
from manifests.media.probe import probe
from manifests.storage import Root, location
from manifests.uris import local_file

COLUMNS = ["pair_id", "edit_type", "instruction", "source_uri", "target_uri", "mask_uri", "edit_params"]


def edit_region(edit_params: str | None, has_mask: bool) -> str:
    """Where a pair's edit acts relative to its mask: "inside" (recolour, removal, addition), "outside" (a
    background change keeps the object in the mask) or "global"; rows without edit_params (the synthetic set)
    are "inside" when they have a mask."""
    try:
        region = json.loads(edit_params or "{}").get("region")
    except (ValueError, AttributeError):
        region = None
    return region if region in ("inside", "outside", "global") else ("inside" if has_mask else "global")


def cover_size(h0: int, w0: int, height: int, width: int) -> tuple[int, int]:
    """The size an (h0, w0) frame is scaled to so that it covers a (height, width) bucket, aspect kept."""
    s = max(height / h0, width / w0)
    return max(height, round(h0 * s)), max(width, round(w0 * s))


def touched(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (T, H, W) bool mask scaled to (T, *size): a pixel is edited when the edit touched any of it, as the
    editors define their masks. A blended mask counted a thin stroke's edge as kept region, where the copy of an
    added caption then read about 34 dB instead of 47."""
    if tuple(size) == tuple(mask.shape[-2:]):  # already at size (the packed copies): nothing to scale
        return mask.bool()
    return F.interpolate(mask.float()[:, None], size=size, mode="area")[:, 0] > 0


def crop_offset(size: tuple[int, int], height: int, width: int, top: float, left: float) -> tuple[int, int]:
    """(y, x) of a (height, width) crop at (top, left) in [0, 1] of a frame of `size` that covers it."""
    return round(top * (size[0] - height)), round(left * (size[1] - width))


def to_bucket(frames: torch.Tensor, height: int, width: int, top: float, left: float) -> torch.Tensor:
    """(T, C, H0, W0) float -> (T, C, height, width): scale to cover the bucket, crop at (top, left) in [0, 1]."""
    h0, w0 = frames.shape[-2:]
    h1, w1 = cover_size(h0, w0, height, width)
    if (h1, w1) != (h0, w0):
        frames = F.interpolate(frames, size=(h1, w1), mode="bilinear", antialias=True, align_corners=False)
    y, x = crop_offset((h1, w1), height, width, top, left)
    return frames[..., y : y + height, x : x + width]


def mask_to_bucket(mask: torch.Tensor, height: int, width: int, top: float, left: float) -> torch.Tensor:
    """(T, H0, W0) bool -> (T, height, width) float in {0, 1}: scaled to cover the bucket as `touched` scales
    (the packed device copies' rule, benchmarks/model_pack_pairs.py) and cropped as to_bucket crops."""
    h1, w1 = cover_size(mask.shape[-2], mask.shape[-1], height, width)
    y, x = crop_offset((h1, w1), height, width, top, left)
    return touched(mask, (h1, w1))[..., y : y + height, x : x + width].float()


def frame_starts(available: int, frames: int, stride: int) -> int:
    """How many first frames a sample of `frames` frames at `stride` may start at in a clip of `available`."""
    return max(1, available - (frames - 1) * stride)


def frame_window(available: int, frames: int, stride: int, start: int) -> list[int]:
    """`frames` indices at `stride` from `start`; short clips repeat their last frame."""
    return [min(start + i * stride, available - 1) for i in range(frames)]


def frame_indices(available: int, frames: int, stride: int, start_u: float) -> list[int]:
    """frame_window from a start chosen by start_u in [0, 1)."""
    return frame_window(available, frames, stride, int(start_u * frame_starts(available, frames, stride)))


def sample_box(available: int, idx: list[int], frame: tuple[int, int], height: int, width: int, top: float,
               left: float) -> np.ndarray:
    """(3, 2) float32: where a sample lies in its whole clip, as [start, end) fractions of the clip's length,
    height and width for (t, y, x). Frames `idx` of `available`; the (height, width) crop at (top, left) of a
    `frame` (h0, w0) scaled by `to_bucket`. Fractions, not pixels, so a clip pre-scaled to the bucket
    (benchmarks/model_pack_pairs.py) gives the same box. A short clip whose last frame repeats gets the span
    its frames cover, not one frame per token."""
    size = cover_size(*frame, height, width)
    y, x = crop_offset(size, height, width, top, left)
    return np.array([[idx[0] / available, (idx[-1] + 1) / available],
                     [y / size[0], (y + height) / size[0]],
                     [x / size[1], (x + width) / size[1]]], dtype=np.float32)


def sample_draws(seed: int, epoch: int, row: int, train: bool, random_crop: bool) -> np.ndarray:
    """(first frame, crop top, crop left), each in [0, 1): drawn from (seed, epoch, row) in training, the middle
    in validation. Without `random_crop` training takes the middle in time and space too, as validation does."""
    if train and random_crop:
        return np.random.default_rng([seed, epoch, row]).random(3)
    return np.full(3, 0.5)


class EditPairs(Dataset):
    """Indexed by (epoch, row); returns a dict of tensors, or None for a pair that cannot be read."""

    def __init__(self, root: Root, split: str, cfg: ModelConfig, seed: int, stride: int = 1,
                 train: bool = True, snapshot: Snapshot | None = None, random_crop: bool = True,
                 mirror: float = 0.0, reverse: float = 0.0) -> None:
        """Rows of `split` as in `snapshot` (whose root then is `root`), else as the dataset is now. Training
        with `random_crop` draws each sample's first frame and where it crops; otherwise it reads the middle
        frames and crops the middle, as validation does. Training mirrors a sample left-right with probability
        `mirror` and plays it backwards with probability `reverse`, its instruction rewritten (augment.py)."""
        self.root = location(snapshot.root if snapshot else root)
        table = read_table(root, "edit_pairs", columns=COLUMNS, filter=ds.field("split") == split, snapshot=snapshot)
        self.rows = table.sort_by("pair_id").to_pylist()
        self.cfg = cfg
        self.seed = seed
        self.stride = stride
        self.train = train
        self.random_crop = random_crop
        self.mirror, self.reverse = (mirror, reverse) if train else (0.0, 0.0)
        self.tokenizer = open_clip.get_tokenizer(cfg.text_model, context_length=cfg.text_context)
        self._frame_counts: dict[str, int] = {}  # per worker: a probe opens the file twice (decord, PyAV)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any] | None:
        epoch, i = key
        row = self.rows[i]
        u = sample_draws(self.seed, epoch, i, self.train, self.random_crop)
        flips = augment_choice(self.seed, epoch, i, row["edit_type"], self.mirror, self.reverse)
        try:
            return self._load(row, u, *flips)
        except Exception:  # noqa: BLE001  # a bad pair (any decode or file error) must not stop training: the collate step counts it
            return None

    def _frames(self, path: Path) -> int:
        """A clip's frame count, probed once: the files of a run's pinned snapshot do not change under it."""
        key = str(path)
        if key not in self._frame_counts:
            self._frame_counts[key] = probe(path).frames
        return self._frame_counts[key]

    def _load(self, row: dict[str, Any], u: np.ndarray, mirrored: bool = False, reversed_: bool = False) -> dict[str, Any]:
        cfg = self.cfg
        src_path, tgt_path = local_file(self.root, row["source_uri"]), local_file(self.root, row["target_uri"])
        available = min(self._frames(src_path), self._frames(tgt_path))
        idx = frame_indices(available, cfg.frames, self.stride, float(u[0]))
        clips = [torch.from_numpy(read_frames(p, idx)).permute(0, 3, 1, 2).float() / 127.5 - 1  # (T, 3, H, W)
                 for p in (src_path, tgt_path)]
        if clips[0].shape != clips[1].shape:
            raise ValueError(f"{row['pair_id']}: source and target sizes differ")
        mask = torch.full((cfg.frames, 1, cfg.height, cfg.width), -1.0)  # -1: no mask
        if row["mask_uri"]:
            masks = open_mask_file(local_file(self.root, row["mask_uri"]))  # the editors' RLE npz
            if masks.shape[1:] != tuple(clips[0].shape[-2:]):
                raise ValueError(f"{row['pair_id']}: mask {masks.shape[1:]} and clip sizes differ")
            m = torch.from_numpy(np.stack([masks.frame(t) for t in idx]))  # (T, H, W) bool
            mask = mask_to_bucket(m, cfg.height, cfg.width, float(u[1]), float(u[2]))[:, None]
        out = [to_bucket(x, cfg.height, cfg.width, float(u[1]), float(u[2])) for x in clips] + [mask]
        sample = [x.transpose(0, 1).contiguous() for x in out]  # (C, T, H, W) each
        frame = (clips[0].shape[-2], clips[0].shape[-1])
        box = sample_box(available, idx, frame, cfg.height, cfg.width, float(u[1]), float(u[2]))
        sample, box, instruction = flip(sample, box, row["instruction"], mirrored, reversed_)
        source, target, mask = sample
        return {
            "source": source, "target": target, "mask": mask[0] if row["mask_uri"] else None,
            "box": torch.from_numpy(box),  # (3, 2): the sample's place in its clip (model.clip_coords)
            "layout": torch.from_numpy(instruction_layout(instruction)),  # (7,): the place it names (model.layout)
            "tokens": self.tokenizer([instruction])[0],
            "edit_type": row["edit_type"], "pair_id": row["pair_id"], "instruction": instruction,
            "region": edit_region(row.get("edit_params"), bool(row["mask_uri"])),
        }


def collate(items: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack the readable pairs; `skipped` counts the ones that were not."""
    good = [x for x in items if x is not None]
    batch: dict[str, Any] = {"skipped": len(items) - len(good), "size": len(good)}
    if not good:
        return batch
    for key in ("source", "target", "tokens", "box", "layout"):
        batch[key] = torch.stack([x[key] for x in good])
    batch["mask"] = [x["mask"] for x in good]  # (T, H, W) or None where the pair has no mask
    for key in ("edit_type", "pair_id", "instruction", "region"):
        batch[key] = [x[key] for x in good]
    return batch


@dataclass
class Position:
    """Where the data stream stands: epoch and the number of this rank's items already taken in it."""
    epoch: int = 0
    offset: int = 0


class ResumableSampler(Sampler):
    """Seeded permutation per epoch, sharded by rank, starting at a saved position; yields (epoch, row)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True,
                 position: Position | None = None, epochs: int | None = None) -> None:
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.start = position or Position()
        self.epochs = epochs

    def order(self, epoch: int) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        per_rank = len(perm) // self.world if self.shuffle else -(-len(perm) // self.world)
        return perm[self.rank :: self.world][:per_rank]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = self.start.epoch, self.start.offset
        while self.epochs is None or epoch < self.epochs:
            for i in self.order(epoch)[offset:]:
                yield epoch, i
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:
        return len(self.order(0)) * (self.epochs or 1)


def advance(pos: Position, items: int, per_epoch: int) -> Position:
    """The position after taking `items` more items."""
    total = pos.offset + items
    return Position(pos.epoch + total // per_epoch, total % per_epoch)


def make_loader(dataset: EditPairs, batch_size: int, workers: int, sampler: ResumableSampler) -> DataLoader:
    """Batches from worker processes. No pinned memory: a batch is a few MB, and the pinning thread of an
    iterator left open by a run that stops on its time limit printed a half traceback at exit (H200, 2026-11-30)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
                      pin_memory=False, persistent_workers=False,
                      prefetch_factor=4 if workers else None)
