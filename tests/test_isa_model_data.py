"""LIVEditor data: the synthetic pair set, deterministic loading, bad files skipped and counted, resume position."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from _isa_model_helpers import pair_set, tiny

from isa_model.data import (
    EditPairs,
    Position,
    ResumableSampler,
    advance,
    collate,
    frame_indices,
    make_loader,
    mask_to_bucket,
    sample_draws,
    to_bucket,
)
from isa_model.synthetic_pairs import apply_edit, render_clip
from manifests import read_table, validate_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return pair_set(tmp_path_factory.mktemp("pairs"))


def test_synthetic_set_follows_the_schema_and_splits_by_clip(root):
    table = read_table(root, "edit_pairs").to_pylist()
    assert len(table) == 16 and {r["split"] for r in table} == {"train", "val"}
    val_clips = {r["clip_id"] for r in table if r["split"] == "val"}
    assert val_clips.isdisjoint({r["clip_id"] for r in table if r["split"] == "train"})
    assert all((root / r["target_uri"]).is_file() for r in table)
    assert all((r["mask_uri"] is not None) == (r["edit_type"] == "invert_box") for r in table)
    issues = validate_dataset(root)  # clips rows do not exist for synthetic pairs: only references may fail
    assert [i for i in issues if i.check != "reference"] == [], issues


def test_edits_are_exact_functions_of_the_source():
    clip = render_clip(np.random.default_rng(0), 2, 8, 10)
    assert np.array_equal(apply_edit(clip, "invert"), 255 - clip)
    gray = apply_edit(clip, "grayscale")
    assert np.array_equal(gray[..., 0], gray[..., 2])
    box = apply_edit(clip, "invert_box")
    assert np.array_equal(box[:, 4:], clip[:, 4:]) and np.array_equal(box[:, :4, :5], 255 - clip[:, :4, :5])


def test_loader_is_deterministic_given_seed_and_differs_across_seeds(root):
    cfg = tiny().model
    ds = EditPairs(root, "train", cfg, seed=5)
    a, b = ds[(0, 3)], ds[(0, 3)]
    assert a["source"].shape == (3, cfg.frames, cfg.height, cfg.width)
    assert torch.equal(a["source"], b["source"]) and torch.equal(a["target"], b["target"])
    others = [EditPairs(root, "train", cfg, seed=s)[(0, 3)]["source"] for s in (6, 7, 8)]
    assert not all(torch.equal(a["source"], o) for o in others)  # other crops / start frames
    assert a["tokens"].shape == (cfg.text_context,) and a["tokens"][0] != 0
    # the target is the edit of the source (through H.264, so approximately)
    if a["edit_type"] == "invert":
        assert (a["source"] + a["target"]).abs().mean() < 0.1


def test_a_centre_crop_trains_on_what_validation_reads(root):
    random = [sample_draws(5, epoch, 3, train=True, random_crop=True) for epoch in range(20)]
    assert len({tuple(u) for u in random}) == 20  # new first frames and crops each epoch
    for epoch in range(20):  # the middle frames, the middle of the frame: validation's
        assert tuple(sample_draws(5, epoch, 3, train=True, random_crop=False)) == (0.5, 0.5, 0.5)
    assert tuple(sample_draws(5, 0, 3, train=False, random_crop=True)) == (0.5, 0.5, 0.5)
    cfg = tiny().model  # the synthetic clips (40 x 48, 6 frames) are wider and longer than tiny's sample
    centred, drawn = (EditPairs(root, "train", cfg, seed=5, random_crop=r) for r in (False, True))
    val_like = EditPairs(root, "train", cfg, seed=5, train=False)
    for epoch in range(3):
        assert torch.equal(centred[(epoch, 3)]["source"], val_like[(epoch, 3)]["source"])
    assert any(not torch.equal(drawn[(e, 3)]["source"], val_like[(e, 3)]["source"]) for e in range(3))


def test_each_clip_is_probed_once_across_epochs(root, monkeypatch):
    import isa_model.data as data

    probed = []
    real_probe = data.probe
    monkeypatch.setattr(data, "probe", lambda path: probed.append(str(path)) or real_probe(path))
    ds = EditPairs(root, "train", tiny().model, seed=0)
    first = [ds[(0, i)] for i in range(3)]
    again = [ds[(0, i)] for i in range(3)]
    later = ds[(1, 0)]
    files = {r[k] for r in ds.rows[:3] for k in ("source_uri", "target_uri")}  # pairs may share a source
    assert later is not None and len(probed) == len(set(probed)) == len(files) > 3
    for a, b in zip(first, again):
        assert torch.equal(a["source"], b["source"]) and torch.equal(a["target"], b["target"])


def test_local_edits_load_their_rle_mask_files(root):
    cfg = tiny().model
    ds = EditPairs(root, "train", cfg, seed=0)
    local = [i for i, r in enumerate(ds.rows) if r["mask_uri"]]
    assert local, "the synthetic set has no local edit in train"
    item = ds[(0, local[0])]
    assert item is not None and item["mask"].shape == (cfg.frames, cfg.height, cfg.width)
    assert 0 < float(item["mask"].mean()) < 1  # the box covers part of each frame


def test_bad_and_missing_files_are_skipped_and_counted(root, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    rows = read_table(broken, "edit_pairs", columns=["split", "source_uri", "target_uri"]).to_pylist()
    train = [r for r in rows if r["split"] == "train"]
    (broken / train[0]["target_uri"]).write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (broken / train[4]["source_uri"]).unlink()  # a clip shared by several pairs
    ds = EditPairs(broken, "train", tiny().model, seed=0)
    loader = make_loader(ds, batch_size=4, workers=0, sampler=ResumableSampler(len(ds), 0, shuffle=False, epochs=1))
    batches = list(loader)
    skipped = sum(b["skipped"] for b in batches)
    assert skipped >= 2 and sum(b["size"] for b in batches) == len(ds) - skipped
    assert all(b["source"].shape[0] == b["size"] for b in batches if b["size"])


def test_sampler_resumes_where_it_stopped_and_shards_by_rank():
    whole = list(ResumableSampler(10, seed=3, epochs=2))
    assert sorted(i for e, i in whole if e == 0) == list(range(10)) and whole[:10] != whole[10:]
    pos = advance(Position(), 13, per_epoch=10)
    assert pos == Position(1, 3)
    assert list(ResumableSampler(10, seed=3, position=pos, epochs=2)) == whole[13:]
    r0, r1 = (set(ResumableSampler(10, seed=3, rank=r, world=2, epochs=1)) for r in (0, 1))
    assert r0.isdisjoint(r1) and len(r0) == len(r1) == 5


def test_a_scaled_mask_keeps_every_pixel_the_edit_touched():
    # a one-pixel stroke, a quarter of each 4 x 4 block it crosses: edited after scaling, not blended into the kept
    # region (the packed device copies mark it so; validation's kept region must be the same on either)
    mask = torch.zeros(1, 16, 32, dtype=torch.bool)
    mask[0, 5, :] = True
    small = mask_to_bucket(mask, 4, 4, top=0.5, left=0.0)  # covers as (4, 8), cropped at the left
    assert small.shape == (1, 4, 4) and small[0, 1].eq(1).all() and small.sum() == 4
    assert torch.equal(mask_to_bucket(mask, 16, 16, 0.5, 1.0), mask[..., 16:].float())  # no scaling: as it is


def test_bucket_crop_and_frame_sampling():
    frames = torch.arange(2 * 3 * 6 * 8, dtype=torch.float32).reshape(2, 3, 6, 8)
    out = to_bucket(frames, 6, 4, top=0.0, left=1.0)
    assert out.shape == (2, 3, 6, 4) and torch.equal(out, frames[..., 4:])
    assert to_bucket(frames, 12, 12, 0.5, 0.5).shape == (2, 3, 12, 12)
    assert frame_indices(10, 4, 2, 0.0) == [0, 2, 4, 6] and frame_indices(3, 4, 1, 0.9) == [0, 1, 2, 2]
    assert collate([None, None]) == {"skipped": 2, "size": 0}
