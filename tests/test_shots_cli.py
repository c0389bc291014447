"""`python -m curation.shots`: table, JSON and bad-input behaviour, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.corpus import build_corpus, load_truth

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation.shots", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("cli_corpus"), seed=0, quick=True, videos=1, with_real=False)[0]


def test_table(video):
    out = _run(str(video))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    truth = load_truth(video)
    assert lines[1].split() == ["shot", "start", "end", "start_s", "end_s"]
    rows = [line.split() for line in lines[2:]]
    assert int(rows[0][1]) == 0 and int(rows[-1][2]) == truth["frames"]
    assert len(rows) == len(truth["transitions"]) + 1


def test_json_and_threshold(video):
    out = _run(str(video), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    truth = load_truth(video)
    assert doc["detector"] == "fast" and doc["frames"] == truth["frames"] and doc["weights_id"] == "none"
    assert doc["cuts"] == truth["cuts"]
    assert doc["shots"][0][0] == 0 and doc["shots"][-1][1] == truth["frames"]
    strict = json.loads(_run(str(video), "--json", "--threshold", "1000").stdout)
    assert strict["cuts"] == []  # no frame changes 1000x more than its neighbours


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    text = tmp_path / "text.mp4"
    text.write_text("hello")
    for args in ([str(text)], [str(tmp_path / "missing.mp4")], [str(text), "--detector", "transnetv2"]):
        out = _run(*args)
        assert out.returncode == 2, out
        assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stdout == ""
