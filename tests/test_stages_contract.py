"""The stage contract: provenance from one helper, per-input failures as errors rows, row merging, units."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import Field

from curation.job_config import ConfigError, config_model, load_config, parse_config
from curation.pipeline import PipelineError, plan_units
from curation.stage import Resources, Stage, StageOutput, WorkUnit, error_id, merge_output, merge_rows
from curation.stage_config import StageConfig
from curation.stages import STAGES, enabled_stages, tables_written
from curation.stages.signals import decode_size
from manifests import SCHEMAS

REPO = Path(__file__).resolve().parents[1]


class _Source:
    name, version, model_name, weights_id = "det", "7", "some-model", "random-init"


class _Halves(Stage):
    """A tiny stage: one errors-table-free row per input, failing on inputs named 'bad*'."""

    name = "halves"
    version = "3"
    resources = Resources(num_cpus=0.25)

    def process(self, unit: WorkUnit) -> StageOutput:
        def one(path: str) -> dict:
            if Path(path).name.startswith("bad"):
                raise ValueError(f"{path}: cannot\nread   this")
            return self.stamp({"clip_id": Path(path).name, "signal": "n", "value": 1.0, "passed": None}, _Source())

        rows, errors = self.isolate(unit.inputs, one, str, unit.attempt)
        return StageOutput({"scores": rows, "errors": errors})


def test_isolate_turns_one_failure_into_an_errors_row_and_keeps_the_rest():
    unit = WorkUnit("b000000", ["/x/a.mp4", "/x/bad.mp4", "/x/c.mp4"], "/out")
    out = _Halves().run(unit)
    assert [r["clip_id"] for r in out.rows("scores")] == ["a.mp4", "c.mp4"]
    (err,) = out.rows("errors")
    assert err["input"] == "/x/bad.mp4" and err["error_class"] == "ValueError"
    assert err["message"] == "/x/bad.mp4: cannot read this"  # one line
    assert err["error_id"] == error_id("/x/bad.mp4", "halves", 1)
    assert (err["stage"], err["stage_version"], err["model_name"], err["weights_id"]) == ("halves", "3", "none", "none")
    # every row has exactly the columns its table's schema names
    assert set(err) == set(SCHEMAS["errors"].names)
    assert set(out.rows("scores")[0]) == set(SCHEMAS["scores"].names)


def test_provenance_of_a_source_names_its_model_and_version():
    row = _Halves().stamp({}, _Source())
    assert row == {"stage": "halves", "stage_version": "3+det-7", "model_name": "some-model", "weights_id": "random-init"}


def test_error_id_is_deterministic_and_depends_on_input_stage_and_attempt():
    assert error_id("a", "s", 1) == error_id("a", "s", 1)
    assert len({error_id("a", "s", 1), error_id("b", "s", 1), error_id("a", "t", 1), error_id("a", "s", 2)}) == 4


def test_merge_rows_upserts_by_key_in_first_seen_order():
    old = [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}]
    new = [{"k": 2, "v": "B"}, {"k": 3, "v": "c"}]
    assert merge_rows(old, new, ("k",)) == [{"k": 1, "v": "a"}, {"k": 2, "v": "B"}, {"k": 3, "v": "c"}]


def test_work_unit_round_trips_through_json_and_merge_keeps_other_tables():
    unit = WorkUnit("b000004", ["/a.mp4"], "/out", 2, {"videos": [{"video_id": "v", "fps": 29.97002997002997}]})
    back = WorkUnit.from_json(unit.to_json())
    assert back == unit
    merged = merge_output(back, StageOutput({"errors": [{"error_id": "e"}]}))
    assert merged.rows("videos") == unit.rows("videos") and merged.rows("errors") == [{"error_id": "e"}]


def test_every_stage_declares_name_version_resources_and_tables():
    names = [s.name for s in STAGES]
    assert names == ["ingest", "shots", "extract", "signals", "objects", "clip_scores", "vlm_scores", "pairs"]
    for stage in STAGES:
        assert stage.version and isinstance(stage.resources, Resources) and stage.resources.num_cpus > 0
        assert set(stage.writes) <= set(SCHEMAS) and "errors" in stage.writes


def test_model_stages_run_only_when_their_section_is_in_the_config(tmp_path):
    plain = parse_config(_config(tmp_path))
    assert [s.name for s in enabled_stages(plain)] == ["ingest", "shots", "extract", "signals"]
    assert tables_written(plain) == ("videos", "clips", "scores", "errors")
    models = parse_config(_config(tmp_path, objects={"methods": ["proposer"]}, clip_scores={}))
    assert [s.name for s in enabled_stages(models)][4:] == ["objects", "clip_scores"]
    assert tables_written(models) == ("videos", "clips", "objects", "object_frames", "scores", "clip_embeddings",
                                      "errors")
    with pytest.raises(ConfigError, match="objects.methods"):
        parse_config(_config(tmp_path, objects={"methods": ["yolo"]}))
    with pytest.raises(ConfigError, match="objects.*proposer.*threshhold"):
        parse_config(_config(tmp_path, objects={"proposer": {"threshhold": 3}}))


@pytest.mark.parametrize(("size", "short", "want"), [((1920, 1080), 256, (456, 256)), ((160, 90), 256, (160, 90)),
                                                    ((180, 320), 120, (120, 214))])
def test_decode_size_shrinks_to_the_short_side_never_up_and_even(size, short, want):
    assert decode_size(*size, short) == want


def _config(tmp_path: Path, **changes) -> dict:
    data = yaml.safe_load((REPO / "jobs/configs/curate.yaml").read_text())
    data.update({"input": str(tmp_path / "in"), "output": str(tmp_path / "out"), **changes})
    return data


def test_shipped_config_validates_and_unknown_keys_are_refused(tmp_path):
    for path in sorted((REPO / "jobs/configs").glob("*.yaml")):
        if path.name == "bytetrack_keep_all.yaml":  # ultralytics' tracker settings, not a curation job
            continue
        cfg = load_config(path)
        assert cfg.thresholds["max_width"] < 7680  # the corpus' 8K input must be rejected at ingest
    assert load_config(REPO / "jobs/configs/train_pairs.yaml").clip_scores is None  # `null` drops an inherited stage
    with pytest.raises(ConfigError, match="batchsize"):
        parse_config(_config(tmp_path, batchsize=3))
    with pytest.raises(ConfigError, match="min_blurr"):
        parse_config(_config(tmp_path, thresholds={"min_blurr": 1.0}))
    with pytest.raises(ConfigError, match="min_clip_s"):
        parse_config(_config(tmp_path, shots={"min_clip_s": 5.0, "max_clip_s": 2.0}))
    with pytest.raises(ConfigError, match="nosuch"):
        parse_config(_config(tmp_path, signals={"names": ["blur", "nosuch"]}))
    with pytest.raises(ConfigError, match="unknown stage"):
        parse_config(_config(tmp_path, resources={"ingestt": {"num_cpus": 1}}))


def test_extends_merges_mappings_over_the_base_and_refuses_loops(tmp_path):
    base = load_config(REPO / "jobs/configs/curate.yaml")
    demo = load_config(REPO / "jobs/configs/demo.yaml")
    assert demo.thresholds == base.thresholds  # inherited whole
    assert demo.shots.min_clip_s == base.shots.min_clip_s and demo.shots.trim_frames == base.shots.trim_frames
    assert base.shots.keyframe_snap_s == 0.5 and demo.shots.keyframe_snap_s == 0.0  # a mapping merged key by key
    assert base.shots.detector_options == {"skip_nonref": True} and demo.shots.detector_options == {"skip_nonref": False}
    assert demo.resources["objects"].num_cpus == 0.75 and demo.resources["ingest"] == base.resources["ingest"]
    assert demo.objects.yolo.weights.allow_random_init and base.objects is None
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nbatch_size: 3\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml: cannot read config"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text(f"extends: {REPO / 'jobs/configs/curate.yaml'}\nthresholds: {{min_blur: 3.0}}\n")
    merged = load_config(tmp_path / "d.yaml")
    assert merged.thresholds == {**base.thresholds, "min_blur": 3.0}


class _TintConfig(StageConfig):
    """The section of a stage that exists only in this test."""

    strength: float = Field(1.0, gt=0)


class _Tint(Stage):
    """A new stage as a contributor writes it: this class and its section, nothing else."""

    name = "tint"
    version = "1"
    writes = ("scores", "errors")
    Config = _TintConfig
    optional = True

    def __init__(self, config: _TintConfig) -> None:
        super().__init__()
        self.config = config

    def process(self, unit: WorkUnit) -> StageOutput:
        return StageOutput({"scores": [
            self.stamp({"clip_id": c["clip_id"], "signal": "tint", "value": self.config.strength, "passed": None})
            for c in unit.rows("clips")]})


def test_a_new_stage_needs_only_its_file_and_one_registry_entry(tmp_path):
    registry = (*STAGES, _Tint)  # the one line a contributor adds to curation/stages/__init__.py
    model = config_model(registry)
    text = yaml.safe_dump(_config(tmp_path, tint={"strength": 2.5}, resources={"tint": {"num_cpus": 0.25}}))
    job = parse_config(yaml.safe_load(text), "tint.yaml", model)
    assert job.section("tint") == _TintConfig(strength=2.5) and job.resources["tint"].num_cpus == 0.25
    assert job.model_dump(mode="json")["tint"] == {"strength": 2.5}  # saved with the plan's settings
    assert [s.name for s in enabled_stages(job, registry)][-1] == "tint" and "scores" in tables_written(job, registry)
    unit = WorkUnit("b000000", [], "/out", tables={"clips": [{"clip_id": "c1"}]})
    (row,) = _Tint.from_job(job).run(unit).rows("scores")
    assert row["value"] == 2.5 and (row["stage"], row["stage_version"]) == ("tint", "1")
    without = parse_config(_config(tmp_path), "plain.yaml", model)
    assert without.section("tint") is None and _Tint not in enabled_stages(without, registry)
    with pytest.raises(ConfigError, match=r"tint.yaml: tint.strenght: Extra inputs"):
        parse_config(_config(tmp_path, tint={"strenght": 2}), "tint.yaml", model)
    with pytest.raises(ConfigError, match="tint: Extra inputs"):  # the shipped registry has no such stage
        parse_config(_config(tmp_path, tint={"strength": 2}), "tint.yaml")


def test_the_stages_never_import_the_job_config():
    code = "import sys, curation.stages; print('curation.job_config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_units_are_sorted_batches_with_stable_ids(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ["c.mp4", "a.mp4", "sub/b.mp4", "notes.txt"]:
        (tmp_path / "in" / name).write_bytes(b"x")
    units = plan_units(parse_config(_config(tmp_path, batch_size=2)), resume=False)
    assert [u.unit_id for u in units] == ["b000000", "b000001"]
    assert [[Path(p).name for p in u.inputs] for u in units] == [["a.mp4", "c.mp4"], ["b.mp4"]]
    # three one-byte files of equal size and content: hashed, the later two planned as duplicates of a.mp4
    first = units[0].inputs[0]
    assert units[0].planned[first]["duplicate_of"] is None
    assert {u.planned[p]["duplicate_of"] for u in units for p in u.inputs if p != first} == {first}
    assert plan_units(parse_config(_config(tmp_path, batch_size=2)), resume=True) == units  # the saved plan
    (tmp_path / "in" / "sub" / "new.mp4").write_bytes(b"y")  # added since: a resume would leave it out
    with pytest.raises(PipelineError, match="1 input.* match now that the run did not plan"):
        plan_units(parse_config(_config(tmp_path, batch_size=2)), resume=True)
    with pytest.raises(PipelineError, match="no input files"):
        plan_units(parse_config(_config(tmp_path, input_glob="*.mkv", output=str(tmp_path / "out2"))), resume=False)
