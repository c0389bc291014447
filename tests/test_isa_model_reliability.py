"""LIVEditor on bad input (issue 26): damaged datasets and tampered checkpoints are one-line errors, a
checkpoint is checked before anything is allocated, training reads URIs through the one resolver and
resumes on the rows it pinned."""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from _isa_model_helpers import pair_set, tiny
from safetensors.torch import load_file, save_file

from isa_model import checkpoint as ck
from isa_model.__main__ import main
from isa_model.data import EditPairs
from isa_model.train import Trainer
from isa_model.validate import print_report
from manifests import ManifestWriter, read_table

STEP = "step_0000002"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return pair_set(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def run_dir(root, tmp_path_factory):
    """A two-step tiny run on `root`; tests tamper with copies of it."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--config", "tiny", "--attention", "dense", "--data", str(root), "--steps", "2",
                 "--out", str(out)]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _one_line_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _train(data: Path, out: Path | str, steps: int = 3, resume: bool = False) -> list[str]:
    return ["train", "--config", "tiny", "--attention", "dense", "--data", str(data), "--steps", str(steps),
            "--out", str(out), *(["--resume"] if resume else [])]


def _train_rows(data: Path) -> list[dict]:
    return sorted((r for r in read_table(data, "edit_pairs").to_pylist() if r["split"] == "train"),
                  key=lambda r: r["pair_id"])


def _append_copies(data: Path, unit: str, rows: list[dict], **changes: str) -> list[dict]:
    """Copies of `rows` under new pair ids (and with `changes`), committed as `unit`."""
    extra = [{**r, "pair_id": f"{r['pair_id']}-{unit}", **changes} for r in rows]
    ManifestWriter(data, "edit_pairs").write(unit, extra)
    return extra


# ---------------------------------------------------------------- datasets the manifests refuse

def test_train_on_a_torn_log_is_one_line_error(root, tmp_path, capsys):
    data = _copy(root, tmp_path / "data")
    log = data / "manifests" / "edit_pairs" / "_delta_log"
    (log / f"{len(list(log.glob('*.json'))):020d}.json").write_bytes(b"")  # a commit torn to nothing
    err = _one_line_error(capsys, _train(data, tmp_path / "run"))
    assert "is empty (torn or emptied)" in err


def test_train_with_a_missing_part_is_one_line_error(root, tmp_path, capsys):
    data = _copy(root, tmp_path / "data")
    next((data / "manifests" / "edit_pairs").glob("*.parquet")).unlink()
    err = _one_line_error(capsys, _train(data, tmp_path / "run"))
    assert "missing" in err and ".parquet" in err


def test_a_scheme_path_is_one_line_error_and_no_local_folder(root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _one_line_error(capsys, _train(root, "s3://bucket/run"))
    assert "s3:// paths are not supported" in err and not (tmp_path / "s3:").exists()


def test_train_when_no_pair_can_be_read_is_one_line_error_not_a_hang(root, tmp_path, capsys):
    data = _copy(root, tmp_path / "data")
    for media in data.rglob("*.mp4"):
        media.unlink()
    capsys.readouterr()
    assert main(_train(data, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    visible = [line for line in re.split(r"[\r\n]", err) if line.strip()]  # the progress bar is erased with \r
    assert visible[-1].startswith("error: ") and "training pairs could be read" in visible[-1], err
    assert "Traceback" not in err


# ---------------------------------------------------------------- tampered checkpoints

class _Payload:
    """Unpickles as a call of os.mkdir: code a checkpoint must never run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_resume_with_a_state_pt_that_runs_code_is_refused(root, run_dir, tmp_path, capsys):
    run = _copy(run_dir, tmp_path / "run")
    marker = tmp_path / "pwned"
    torch.save({"step": 2, "payload": _Payload(marker)}, run / "checkpoints" / STEP / "state.pt")
    err = _one_line_error(capsys, _train(root, run, resume=True))
    assert f"checkpoint {STEP}: state.pt holds what a weights-only load refuses" in err and "mkdir" in err
    assert not marker.exists()


def test_resume_refuses_a_state_pt_that_inflates_before_loading_it(root, run_dir, tmp_path, capsys):
    """A 128 MiB tensor of zeros, deflated: a file of a few hundred KB that unpacks beyond the bound."""
    run = _copy(run_dir, tmp_path / "run")
    state_pt = run / "checkpoints" / STEP / "state.pt"
    state = torch.load(state_pt, weights_only=True)
    state["pad"] = torch.zeros(32 << 20)
    torch.save(state, tmp_path / "big.pt")
    del state
    with zipfile.ZipFile(tmp_path / "big.pt") as src, zipfile.ZipFile(state_pt, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            with src.open(info) as a, dst.open(info.filename, "w") as b:
                shutil.copyfileobj(a, b, 1 << 20)
    assert state_pt.stat().st_size < (tmp_path / "big.pt").stat().st_size / 4
    err = _one_line_error(capsys, _train(root, run, resume=True))
    assert "state.pt unpacks to" in err and "parameters needs" in err


def test_resume_refuses_a_state_pt_that_is_not_a_torch_archive(root, run_dir, tmp_path, capsys):
    run = _copy(run_dir, tmp_path / "run")
    (run / "checkpoints" / STEP / "state.pt").write_bytes(b"\x80\x02}q\x00.")  # a bare pickle, no archive
    err = _one_line_error(capsys, _train(root, run, resume=True))
    assert "state.pt is not a torch archive" in err


def _checkpoint(run_dir: Path, tmp_path: Path) -> Path:
    return _copy(run_dir / "checkpoints" / STEP, tmp_path / STEP)


def _validate(ckpt: Path, tmp_path: Path) -> list[str]:
    return ["validate", "--ckpt", str(ckpt), "--out", str(tmp_path / "val"), "--steps", "1", "--max-pairs", "1"]


def _edit(ckpt: Path, root: Path, tmp_path: Path) -> list[str]:
    video = next((root / "clips").glob("*.mp4"))
    return ["edit", "--ckpt", str(ckpt), "--video", str(video), "--instruction", "x", "--out",
            str(tmp_path / "e.mp4"), "--steps", "1"]


@pytest.mark.parametrize("command", ["validate", "edit"])
def test_weights_of_another_shape_are_one_line_naming_the_tensor(command, root, run_dir, tmp_path, capsys):
    ckpt = _checkpoint(run_dir, tmp_path)
    ema = load_file(ckpt / "ema.safetensors")
    ema["out.weight"] = ema["out.weight"][:, :32].contiguous()
    save_file(ema, ckpt / "ema.safetensors")
    argv = _validate(ckpt, tmp_path) if command == "validate" else _edit(ckpt, root, tmp_path)
    err = _one_line_error(capsys, argv)
    rows = ema["out.weight"].shape[0]  # (channels + the blend mask's logit) x 8 x 8
    assert f"ema.safetensors has out.weight of shape [{rows}, 32], its config implies [{rows}, 64]" in err


@pytest.mark.parametrize("command", ["validate", "edit"])
def test_truncated_weights_are_one_line_error(command, root, run_dir, tmp_path, capsys):
    ckpt = _checkpoint(run_dir, tmp_path)
    weights = ckpt / "ema.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    argv = _validate(ckpt, tmp_path) if command == "validate" else _edit(ckpt, root, tmp_path)
    err = _one_line_error(capsys, argv)
    assert f"checkpoint {STEP}: ema.safetensors:" in err


def _tamper_config(ckpt: Path, **model: object) -> None:
    meta = json.loads((ckpt / "config.json").read_text())
    meta["config"]["model"].update(model)
    (ckpt / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("field", "value"), [("depth", 10**6), ("frames", 10**9), ("dim", 2**30)])
def test_a_config_asking_for_unbounded_memory_is_refused_before_building(field, value, run_dir, tmp_path, capsys):
    ckpt = _checkpoint(run_dir, tmp_path)
    _tamper_config(ckpt, **{field: value})
    with pytest.raises(ck.CheckpointError, match=f"config.json: model.{field} {value} is outside"):
        ck.read_config(ckpt)
    err = _one_line_error(capsys, _validate(ckpt, tmp_path))
    assert f"model.{field} {value} is outside" in err


def test_a_config_within_bounds_but_not_the_weights_names_the_first_missing_tensor(root, run_dir, tmp_path,
                                                                                    capsys):
    ckpt = _checkpoint(run_dir, tmp_path)
    _tamper_config(ckpt, depth=3)
    err = _one_line_error(capsys, _edit(ckpt, root, tmp_path))
    assert "ema.safetensors has no tensor blocks.2.qkv.weight [192, 64], which its config implies" in err


# ---------------------------------------------------------------- training reads through the manifests' rules

def test_a_uri_out_of_the_root_is_skipped_like_a_missing_file(root, tmp_path):
    data = _copy(root, tmp_path / "data")
    outside = tmp_path / "outside"
    outside.mkdir()
    row = _train_rows(data)[0]
    shutil.copy(data / row["source_uri"], outside / "clip.mp4")  # a readable clip, but not under the root
    escaping = _append_copies(data, "escaping", [row], source_uri="../outside/clip.mp4")[0]
    kept = _append_copies(data, "inside", [row])[0]
    ds = EditPairs(data, "train", tiny().model, seed=0)
    by_id = {r["pair_id"]: i for i, r in enumerate(ds.rows)}
    assert ds[(0, by_id[escaping["pair_id"]])] is None  # refused by resolve_uri, as `sample --pairs` does
    assert ds[(0, by_id[kept["pair_id"]])] is not None


def test_resume_keeps_the_pinned_rows_after_rows_were_appended(root, run_dir, tmp_path, capsys):
    data, run = _copy(root, tmp_path / "data"), _copy(run_dir, tmp_path / "run")
    _append_copies(data, "later", _train_rows(data)[:3])
    capsys.readouterr()
    base = tiny(attention="dense")
    cfg = type(base)(base.name, base.model, type(base.data)(**{**base.data.__dict__, "root": str(data)}), base.train)
    trainer = Trainer(cfg, run, resume=True)
    assert trainer.step == 2 and len(trainer.dataset) == 12  # not the 15 train rows there are now
    assert trainer.dataset.root == data.absolute()  # the pinned files, found where the data is now
    out = capsys.readouterr().out
    assert "edit_pairs has changed since this run pinned it (19 rows now, 16 pinned); the resume keeps" in out
    assert ck.read_snapshot(run / "checkpoints" / STEP).table("edit_pairs").rows == 16


def test_resume_refuses_when_the_pinned_files_are_gone(root, run_dir, tmp_path, capsys):
    data, run = _copy(root, tmp_path / "data"), _copy(run_dir, tmp_path / "run")
    next((data / "manifests" / "edit_pairs").glob("*.parquet")).unlink()  # as a gc would
    err = _one_line_error(capsys, _train(data, run, resume=True))
    assert f"checkpoint {STEP}: 1 file(s) of the edit_pairs snapshot this run trains on are gone" in err


def test_a_checkpoint_from_before_pinning_resumes_on_the_data_as_it_is(root, run_dir, tmp_path, capsys):
    run = _copy(run_dir, tmp_path / "run")
    (run / "checkpoints" / STEP / ck.SNAPSHOT_FILE).unlink()
    capsys.readouterr()
    assert main(_train(root, run, resume=True)) == 0
    assert f"{STEP} pins no edit_pairs snapshot" in capsys.readouterr().out
    assert ck.read_snapshot(ck.latest(run / "checkpoints")).table("edit_pairs").rows == 16


def test_a_report_with_no_finite_value_prints_n_a(capsys):
    """Identical source and target give an infinite copy PSNR, so its mean and the gain have no value."""
    row = {"pairs": 1, "psnr": 30.0, "copy_psnr": None, "gain_db": None, "ssim": 0.5, "isa_vs_dense_psnr": 40.0}
    print_report({"per_edit_type": {"style": row}, "overall": row, "pairs": 1, "skipped": 0,
                  "attention_per_step": {"isa_ms": 1.0, "dense_ms": 2.0}})
    style = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("style"))
    assert style.split()[3:5] == ["n/a", "n/a"]


@pytest.mark.parametrize(("name", "said"), [("delta", True), ("source", True), ("noise", False)])
def test_the_report_says_a_model_that_starts_at_the_source_is_the_copy_untrained(name, said, capsys):
    """The demo's tiny model is near the copy after its CPU minute: the table must say what 0.00 means."""
    row = {"pairs": 1, "psnr": 30.0, "copy_psnr": 30.0, "gain_db": 0.0, "ssim": 0.5, "isa_vs_dense_psnr": 40.0}
    print_report({"per_edit_type": {"style": row}, "overall": row, "pairs": 1, "skipped": 0, "objective": name,
                  "attention_per_step": {"isa_ms": 1.0, "dense_ms": 2.0}})
    assert ("untrained, it is the copy" in capsys.readouterr().out) == said
