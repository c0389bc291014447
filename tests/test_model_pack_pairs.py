"""benchmarks/model_pack_pairs.py: the device copy of a pair set keeps every row's files, the middle frames,
masks that cover every touched pixel, stores repeated files once, adds other sets' rows as training rows, and
splits in parts that merge back whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _isa_model_helpers import benchmark_tool, pair_set

from isa_model.synthetic_pairs import build_pairs
from manifests import read_table
from manifests.media.masks import open_mask_file, write_mask_file
from manifests.media.probe import probe
from manifests.snapshot import Snapshot

TOOL = Path(__file__).parents[1] / "benchmarks" / "model_pack_pairs.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=300)


def test_pack_split_check_and_merge(tmp_path: Path):
    root = pair_set(tmp_path / "pairs")  # 6-frame clips of 40x48 with the editors' mask files
    out = tmp_path / "pack"
    done = _run(str(root), str(out), "--frames", "4", "--short-side", "32", "--first-mib", "0.01",
                "--part-mib", "0.02")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    parts = result["part_bytes"]
    assert result["rows"] == 16 and len(parts) >= 3 and min(parts) > 0
    later = [benchmark_tool("model_pack_pairs").part_folder(out, i) for i in range(1, len(parts))]
    assert [p.name for p in later[:2]] == ["pack-b", "pack-c"]
    for folder, size in zip(later, parts[1:]):  # each later part within its size, unless one file alone is larger
        files = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
        assert sum(files) == size and (size <= 0.02 * 2**20 or len(files) == 1)
    for folder in later:  # what the device script does with DATA_PARTS, one part after another
        assert _run("--unpack", str(out)).returncode == 1  # a later part's files are still missing
        shutil.copytree(folder, out, dirs_exist_ok=True)
    check = _run("--unpack", str(out))
    assert check.returncode == 0 and json.loads(check.stdout)["missing"] == 0

    clip = next(p for p in (out / "pairs").glob("*.mp4"))
    info = probe(clip)
    assert info.frames == 4 and min(info.width, info.height) == 32  # middle 4 of 6 frames, short side 32
    packed = next(out.rglob("*.mask.npz"))
    original = open_mask_file(root / packed.relative_to(out)).dense()[1:5]  # (4, 40, 48): the middle frames
    small = open_mask_file(packed).dense()  # (4, 32, 38)
    (_, big_h, big_w), (_, h, w) = original.shape, small.shape
    for t in range(4):  # every touched pixel lands in an edited one: a kept pixel was never touched
        ys, xs = np.nonzero(original[t])
        assert small[t, ys * h // big_h, xs * w // big_w].all()
    assert small.sum() < 2 * original.sum() * h * w / (big_h * big_w)  # grown by the edge only


def test_a_thin_stroke_stays_edited_when_scaled_down(tmp_path: Path):
    """Text strokes a pixel wide cover under half of each scaled pixel: they must still count as edited, or
    the kept region holds pixels the edit changed (the copy's own kept PSNR fell to 39 dB on add_text)."""
    mask = np.zeros((3, 144, 256), bool)
    mask[:, 40:80, 101] = True  # a vertical stroke one pixel wide
    mask[1, 60, 30:200] = True  # and a horizontal one in the middle frame
    write_mask_file(tmp_path / "m.npz", mask)
    tool = benchmark_tool("model_pack_pairs")
    tool.scale_mask(tmp_path / "m.npz", tmp_path / "small.npz", 64, keep=2)
    small = open_mask_file(tmp_path / "small.npz").dense()  # (2, 64, 114): frames 0 and 1
    assert small.shape == (2, 64, 114)
    for t in range(2):
        ys, xs = np.nonzero(mask[t])
        assert small[t, ys * 64 // 144, xs * 114 // 256].all()
    assert not small[:, :10].any()  # nothing outside the strokes' rows


def _rows(copy: Path) -> list[dict]:
    snapshot = Snapshot.from_json((copy / "edit_pairs.snapshot.json").read_text())
    snapshot = Snapshot(str(copy), snapshot.units_version, snapshot.tables, snapshot.taken_at)
    return read_table(copy, "edit_pairs", columns=["pair_id", "split", "mask_uri"], snapshot=snapshot).to_pylist()


def test_other_sets_join_as_training_rows_and_repeats_are_stored_once(tmp_path: Path):
    first = pair_set(tmp_path / "first")  # 12 train, 4 val
    other = tmp_path / "other"
    build_pairs(other, clips=4, frames=6, size=(40, 48), seed=2)  # its own clip ids
    out = tmp_path / "pack"
    done = _run(str(first), str(out), "--frames", "4", "--short-side", "32", "--train-from", str(other))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # every local pair's box mask has the same bytes: stored once, the rest listed
    assert result["rows"] == 32 and result["duplicates"] > 0
    listed = json.loads((out / "duplicates.json").read_text())
    assert len(listed) == result["duplicates"] and not any((out / rel).exists() for rel in listed)
    check = _run("--unpack", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    assert all((out / rel).read_bytes() == (out / kept).read_bytes() for rel, kept in listed.items())
    rows = _rows(out)
    assert len(rows) == 32
    held_out = {r["pair_id"] for r in rows if r["split"] != "train"}
    assert len(held_out) == 4 and all(p.startswith("synthetic0001") for p in held_out)  # only the first set's
    assert sum(r["pair_id"].startswith("synthetic0002") for r in rows) == 16


def test_pairs_already_packed_are_left_out_and_colliding_files_refused(tmp_path: Path):
    first = pair_set(tmp_path / "first")
    again = pair_set(tmp_path / "again")  # the same pairs (every corpus holds the same real clip)
    done = _run(str(first), str(tmp_path / "pack"), "--frames", "4", "--train-from", str(again))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 16 and len(_rows(tmp_path / "pack")) == 16
    for part in (again / "manifests" / "edit_pairs").glob("*.parquet"):  # other pairs, the same files
        table = pq.read_table(part)
        renamed = pa.array([f"{p}-other" for p in table.column("pair_id").to_pylist()])
        pq.write_table(table.set_column(table.schema.get_field_index("pair_id"), "pair_id", renamed), part)
    done = _run(str(first), str(tmp_path / "pack2"), "--frames", "4", "--train-from", str(again))
    assert done.returncode != 0 and "is in both" in done.stderr and "Traceback" not in done.stderr


def test_a_set_can_join_with_only_some_edit_types(tmp_path: Path):
    first = pair_set(tmp_path / "first")
    other = tmp_path / "other"
    build_pairs(other, clips=4, frames=6, size=(40, 48), seed=2)  # 4 pairs of each of 4 types
    out = tmp_path / "pack"
    done = _run(str(first), str(out), "--frames", "4", "--short-side", "32",
                "--train-from", f"{other}=invert_box,sepia")
    assert done.returncode == 0, done.stderr
    snapshot = Snapshot.from_json((out / "edit_pairs.snapshot.json").read_text())
    rows = read_table(out, "edit_pairs", columns=["pair_id", "edit_type", "split"],
                      snapshot=Snapshot(str(out), snapshot.units_version, snapshot.tables, snapshot.taken_at)).to_pylist()
    joined = [r for r in rows if r["pair_id"].startswith("synthetic0002")]
    assert sorted({r["edit_type"] for r in joined}) == ["invert_box", "sepia"] and len(joined) == 8
    assert all(r["split"] == "train" for r in joined) and json.loads(done.stdout)["rows"] == len(rows) == 24
    assert _run("--unpack", str(out)).returncode == 0  # every file the joined rows use came along
