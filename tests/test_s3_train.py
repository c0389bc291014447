"""Training from a dataset on object storage: the tiny model trains a few steps on an `s3://` root (a real
S3 API server on 127.0.0.1, started by the test) with the same losses as from the same files on disk, its
clips and masks read through the local cache."""

from __future__ import annotations

import pyarrow.fs as pafs
from _isa_model_helpers import pair_set, tiny
from _s3_helpers import s3_server  # noqa: F401 - the `s3` fixture

from isa_model.__main__ import main
from isa_model.train import train
from isa_model.validate import validate
from manifests.storage import location


def _cfg(root: str, steps: int):
    base = tiny(attention="dense")
    return type(base)(base.name, base.model, type(base.data)(**{**base.data.__dict__, "root": root}),
                      type(base.train)(**{**base.train.__dict__, "steps": steps, "ckpt_every": steps}))


def test_training_from_s3_equals_training_from_disk(s3, tmp_path, monkeypatch):
    local = pair_set(tmp_path / "pairs")
    remote = location(f"s3://{s3.bucket()}/pairs")
    pafs.copy_files(str(local), remote.key, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=remote.fs)
    monkeypatch.setenv("LIVEDITOR_STAGING_DIR", str(tmp_path / "cache"))
    from_disk = [r["loss"] for r in train(_cfg(str(local), 2), tmp_path / "disk")]
    from_s3 = [r["loss"] for r in train(_cfg(str(remote), 2), tmp_path / "s3")]
    assert from_s3 == from_disk and len(from_s3) == 2
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert any(name.endswith(".mp4") for name in cached)  # the clips were read from their local copies
    ckpt = tmp_path / "s3" / "checkpoints"
    on_disk = validate(ckpt, tmp_path / "val-disk", data_root=str(local), steps=2, max_pairs=2, previews=0)
    on_s3 = validate(ckpt, tmp_path / "val-s3", data_root=str(remote), steps=2, max_pairs=2, previews=0)
    assert on_s3["pairs"] == on_disk["pairs"] == 2
    assert [on_s3["overall"][k] for k in ("psnr", "ssim")] == [on_disk["overall"][k] for k in ("psnr", "ssim")]


def test_train_cli_accepts_an_s3_data_root_and_refuses_a_missing_one_in_one_line(s3, tmp_path, monkeypatch, capsys):
    bucket = s3.bucket()
    monkeypatch.setenv("LIVEDITOR_STAGING_DIR", str(tmp_path / "cache"))
    code = main(["train", "--config", "tiny", "--data", f"s3://{bucket}/nothing", "--steps", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
