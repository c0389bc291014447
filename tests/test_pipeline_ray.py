"""The curation pipeline end to end: through Ray and in-process on a quick corpus with every bad input.

One Ray run and one in-process run over the same inputs (module fixtures, shared by the tests):
both must produce the same manifests row for row and pass `manifests validate`; every bad input is an
errors row (or, for the 8K one, a rejected videos row) while the good videos of the same unit still
produce clips; every path the glob matches (folders, dangling links, links out of the root, byte-identical
copies in other units) is accounted for; the local Ray binds only to loopback.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil
import pytest
import yaml
from _job_helpers import is_loopback, sockets_of

from curation.corpus import build_corpus
from curation.job_config import parse_config
from curation.pipeline import PipelineError, run
from curation.ray_runtime import ray_session
from manifests import PRIMARY_KEYS, read_table, validate_dataset

REPO = Path(__file__).resolve().parents[1]
TABLES = ("videos", "clips", "scores", "errors")
BAD = {"truncated.mp4", "empty.mp4", "text.mp4", "image_png.mp4"}
PATHS = {  # input name -> what its errors row must say
    "dangling.mp4": "dangling symbolic link",
    "folder.mp4": "a folder, not a video file",
    "outside.mp4": "outside the input root",
    "zz_copy_of_synth_000.mp4": "same content as",
    "zz_link_to_synth_001.mp4": "same content as",
}


def _config(inputs: Path, output: Path, **changes) -> object:
    data = yaml.safe_load((REPO / "jobs/configs/curate_small.yaml").read_text())
    data.update({"input": str(inputs), "output": str(output), "input_glob": "**/*.mp4", "batch_size": 4,
                 "num_cpus": 2, **changes})
    return parse_config(data)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=0, quick=True, with_bad_inputs=True)
    inputs = root / "inputs"  # the synthetic videos and the bad ones; the 212 s real clip is left out
    inputs.mkdir()
    synthetic = sorted((root / "synthetic").glob("*.mp4"))
    for src in synthetic + sorted((root / "bad").glob("*.mp4")):
        os.link(src, inputs / src.name)
    # 13 paths in 4 units; the copies sort last, so the first copy of each video is in an earlier unit
    (inputs / "dangling.mp4").symlink_to(root / "nowhere.mp4")
    (inputs / "folder.mp4").mkdir()
    (inputs / "outside.mp4").symlink_to(synthetic[2])  # outside the input root: never opened
    shutil.copyfile(synthetic[0], inputs / "zz_copy_of_synth_000.mp4")
    (inputs / "zz_link_to_synth_001.mp4").symlink_to(inputs / synthetic[1].name)  # inside the root: followed
    return inputs


@pytest.fixture(scope="module")
def ray_out(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "out"
    stats = run(_config(corpus, out), in_process=False)
    assert stats.units_done == stats.units_total == 4  # 13 inputs, 4 per unit: good and bad mixed
    return out


@pytest.fixture(scope="module")
def local_out(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    run(_config(corpus, out), in_process=True)
    return out


def _sorted_rows(root: Path, table: str) -> list[dict]:
    rows = read_table(root, table).to_pylist()
    key = PRIMARY_KEYS[table]
    return sorted(rows, key=lambda r: tuple(r[k] for k in key))


def test_ray_and_in_process_runs_give_the_same_manifests(ray_out, local_out):
    for table in TABLES:
        ray_rows, local_rows = _sorted_rows(ray_out, table), _sorted_rows(local_out, table)
        assert ray_rows == local_rows, f"{table} differs between Ray and in-process"
        keys = [tuple(r[k] for k in PRIMARY_KEYS[table]) for r in ray_rows]
        assert len(keys) == len(set(keys)), f"duplicate keys in {table}"
    assert validate_dataset(ray_out) == []


def test_bad_inputs_become_errors_rows_and_good_videos_still_make_clips(ray_out):
    errors = read_table(ray_out, "errors").to_pylist()
    failed = {Path(e["input"]).name: e for e in errors if e["stage"] == "ingest"}
    assert BAD <= set(failed), f"missing errors rows for {BAD - set(failed)}"
    for e in failed.values():
        assert e["message"] and "\n" not in e["message"] and e["error_class"]
    videos = {Path(v["uri"]).name: v for v in read_table(ray_out, "videos").to_pylist()}
    huge = videos["huge_7680x4320.mp4"]
    assert huge["status"] == "rejected" and "width 7680 > max" in huge["reject_reason"]
    assert huge["frames"] is None  # rejected from the header, before any frame was decoded
    good = [v for v in videos.values() if v["status"] == "ok"]
    assert len(good) == 3 and not BAD & set(videos)
    clips = read_table(ray_out, "clips").to_pylist()
    made = {c["video_id"] for c in clips}
    assert made <= {v["video_id"] for v in good}
    # synth_000 shares unit b000001 with the png input and a link out of the root: they did not stop it
    assert videos["synth_000_256x144_25p00fps.mp4"]["video_id"] in made and len(made) >= 2
    for clip in clips:
        assert clip["uri"].startswith("clips/") and (ray_out / clip["uri"]).is_file()
        assert clip["status"] in ("ok", "rejected") and (clip["status"] == "ok") == (clip["reject_reason"] is None)


def test_every_matched_path_is_accounted_for_and_copies_name_the_first(corpus, ray_out):
    matched = {p.name for p in corpus.glob("**/*.mp4")}
    videos = {Path(v["uri"]).name for v in read_table(ray_out, "videos").to_pylist()}
    errors = {Path(e["input"]).name: e for e in read_table(ray_out, "errors").to_pylist() if e["stage"] == "ingest"}
    assert videos | set(errors) == matched and not videos & set(errors)
    for name, needle in PATHS.items():
        assert needle in errors[name]["message"], errors[name]
    assert errors["zz_copy_of_synth_000.mp4"]["error_class"] == "DuplicateInput"
    synth = sorted(corpus.glob("synth_*.mp4"))
    assert f"same content as {synth[0]} " in errors["zz_copy_of_synth_000.mp4"]["message"]
    assert f"same content as {synth[1]} " in errors["zz_link_to_synth_001.mp4"]["message"]
    assert errors["outside.mp4"]["error_class"] == "InputError"


def test_scores_rows_carry_each_signals_provenance_and_verdicts_follow_them(ray_out):
    scores = read_table(ray_out, "scores")
    assert scores.num_rows > 0
    rows = scores.to_pylist()
    signals = {r["signal"] for r in rows}
    assert {"width", "height", "duration", "luminance", "blur", "motion", "static", "slideshow", "text_overlay"} <= signals
    ocr = [r for r in rows if r["signal"] == "text_overlay"]
    assert all(r["model_name"] == "rapidocr-onnxruntime" and r["weights_id"] != "none" for r in ocr)
    assert all(r["stage_version"].startswith("1+blur-") for r in rows if r["signal"] == "blur")
    failed_clips = {r["clip_id"] for r in rows if r["passed"] is False}
    clips = {c["clip_id"]: c for c in read_table(ray_out, "clips").to_pylist()}
    assert {cid for cid, c in clips.items() if c["status"] == "rejected"} == failed_clips


def test_a_second_run_without_resume_is_refused_and_with_resume_skips_everything(corpus, local_out):
    with pytest.raises(PipelineError, match="--resume"):
        run(_config(corpus, local_out), in_process=True)
    before = {t: read_table(local_out, t) for t in TABLES}
    stats = run(_config(corpus, local_out), in_process=True, resume=True)
    assert (stats.units_skipped, stats.units_done) == (4, 0)
    for table in TABLES:
        assert read_table(local_out, table).equals(before[table])
    with pytest.raises(PipelineError, match="different settings"):
        run(_config(corpus, local_out, thresholds={"min_blur": 99.0}), in_process=True, resume=True)
    with pytest.raises(PipelineError, match=r"different settings \(batch_size\)"):
        run(_config(corpus, local_out, batch_size=3), in_process=True, resume=True)


def test_local_ray_listens_only_on_loopback():
    with ray_session(num_cpus=2):
        import ray.data

        assert ray.data.range(8).map_batches(lambda b: b, batch_size=2).count() == 8  # start some workers
        me = psutil.Process()
        listening, remote = sockets_of({me.pid} | {p.pid for p in me.children(recursive=True)})
        assert len(listening) >= 3  # gcs, raylet, workers: the check below is not vacuous
        assert all(is_loopback(ip) for ip, _ in listening), listening
        assert remote == []


def test_a_ray_start_failure_is_one_line_naming_ray_s_hidden_cause():
    """Ray's "Failed to connect to Ray cluster" carries why only in its __cause__ (a CI run showed just that)."""
    from curation.ray_runtime import RayStartError, _one_line_start_errors

    with pytest.raises(RayStartError) as caught, _one_line_start_errors("could not join the Ray cluster at X"):
        try:
            raise RuntimeError("No node info found matching attributes:\n'' when trying to resolve node to connect to.")
        except RuntimeError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at X") from cause
    message = str(caught.value)
    assert "\n" not in message and message.startswith("could not join the Ray cluster at X: Failed to connect")
    assert message.endswith("(No node info found matching attributes: '' when trying to resolve node to connect to.)")
