"""What the command lines print: printable text whatever a manifest or a path holds, and bounded arguments.

An input file named with terminal escapes becomes an `errors` row; printed raw, `manifests head` would set
the window title, clear the screen, colour the text or break the table's lines. Every human-readable line
shows such characters as visible escapes instead (`--json` stays JSON). Numbers given on a command line
are checked against explicit ranges at parse time: one `error:` line and exit 2, never a traceback.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from _manifests_helpers import provenance, run_cli, run_json, score_row, small_dataset

from curation.corpus.__main__ import main as corpus_main
from curation.shots.__main__ import main as shots_main
from manifests import ManifestWriter
from manifests.cli import main as manifests_main
from manifests.cli_args import float_in, int_in
from manifests.render import MAX_CELL, cell, printable

HOSTILE_NAME = "x\x1b]0;HACKED\x07\x1b[2J\x1b[31mFAKE\nsecond\r\tline\u202eevil\x9b1m\x7f"
"""An input file name that would retitle the window, clear the screen, colour and reverse text, break lines."""
HIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
CURATION_MAINS = {"curation.shots": shots_main, "curation.corpus": corpus_main}


def hidden_characters(text: str) -> set[str]:
    """Characters a terminal acts on or hides, other than the newlines that end lines."""
    return {c for c in text if c != "\n" and unicodedata.category(c) in HIDDEN_CATEGORIES}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A valid dataset whose root name holds a bidi override and whose rows hold escapes (Delta Lake refuses
    control characters in table paths, so those come through row values and output paths)."""
    root = tmp_path_factory.mktemp("out") / "ds\u202eevil"
    tables = small_dataset(root, n_clips=6, n_objects=0)
    error = {"error_id": "hostile", "input": HOSTILE_NAME, "error_class": "Decode\x1b[31mError",
             "message": f"cannot open {HOSTILE_NAME}", "attempt": 1, **provenance("ingest")}
    ManifestWriter(root, "errors").write("hostile-errors", [error])
    clip = tables["clips"].column("clip_id")[0].as_py()
    ManifestWriter(root, "scores").write("hostile-scores", [score_row(clip, signal="blur\x1b[2J", value=2.0)])
    return root


def test_printable_escapes_what_a_terminal_acts_on_and_keeps_the_rest():
    assert printable("a\x1b]0;T\x07b\nc\rd\te\x7f\x9b\x00") == "a\\x1b]0;T\\x07b\\nc\\rd\\te\\x7f\\x9b\\x00"
    assert printable("\u202eabc\u2066\u200b\u2028\ufeff\U000e0041") == "\\u202eabc\\u2066\\u200b\\u2028\\ufeff\\U000e0041"
    assert printable("clip\udcff.mp4") == "clip\\udcff.mp4"  # a file name that was not UTF-8
    plain = "héllo wörld 日本語 😀 a\\b 50%"
    assert printable(plain) == plain
    assert printable(printable(HOSTILE_NAME)) == printable(HOSTILE_NAME)


def test_a_cell_is_escaped_before_it_is_cut():
    shown = cell("\x1b" * 1000)
    assert len(shown) == MAX_CELL and shown.endswith("...") and not hidden_characters(shown)
    assert cell("\x1b[2J") == "\\x1b[2J"


@pytest.mark.parametrize(
    "args, shown",
    [
        (("head", "{root}", "errors"), "x\\x1b]0;HACKED\\x07\\x1b[2J"),
        (("filter", "{root}", "errors", 'error_id == "hostile"', "--columns", "error_id,input"), "FAKE\\nsecond"),
        (("summary", "{root}"), "Decode\\x1b[31mError"),
        (("summary", "{root}", "scores"), "blur\\x1b[2J"),
        (("validate", "{root}"), "ds\\u202eevil is valid"),
        (("snapshot", "{root}", "--out", "{out}/snap\x1b[2J.json"), "snap\\x1b[2J.json"),
        (("stats", "{root}", "scores", "value", "--out", "{out}/charts\x1b]0;HACKED\x07"), "charts\\x1b]0;HACKED\\x07"),
        (("summary", "{out}/nope\x1b]0;HACKED\x07"), "nope\\x1b]0;HACKED\\x07: not a dataset root"),
        (("sample", "{root}", "--out", "{out}/sheet.png"), "ds\\u202eevil"),  # the error names the root
    ],
)
def test_human_output_shows_escapes_instead_of_acting_on_them(hostile, tmp_path, args, shown):
    done = run_cli(*(a.format(root=hostile, out=tmp_path) for a in args))
    assert done.returncode in (0, 2) and "Traceback" not in done.stderr, done.stderr
    printed = done.stdout + done.stderr
    assert not hidden_characters(printed), sorted(map(repr, hidden_characters(printed)))
    assert shown in printed, printed


def test_a_newline_in_a_name_does_not_break_the_table(hostile):
    lines = run_cli("head", hostile, "errors").stdout.splitlines()
    assert len(lines) == 1 + 4 + 1 and lines[-1] == "(4 rows)"  # header, 3 synthetic rows + the hostile one, count
    assert run_json("head", hostile, "errors", "--columns", "input")["rows"][0]["input"] == HOSTILE_NAME  # JSON: raw


@pytest.mark.parametrize(
    "args, text",
    [
        (("head", "{root}", "scores", "-n", "99999999999999999999"), "argument -n: expected a whole number from 0 to"),
        (("head", "{root}", "scores", "-n", "-1"), "argument -n"),
        (("filter", "{root}", "scores", "value > 0", "--limit", "99999999999999999999"), "argument --limit"),
        (("filter", "{root}", "scores", "value > 0", "--limit", "1" + "0" * 5000), "argument --limit"),
        (("stats", "{root}", "scores", "value", "--out", "{out}", "--bins", "0"), "argument --bins"),
        (("stats", "{root}", "scores", "value", "--out", "{out}", "--bins", "10000000000"), "argument --bins"),
        (("compact", "{root}", "--target-mib", "99999999999999999999"), "argument --target-mib"),
        (("gc", "{root}", "--retention-hours", "inf"), "argument --retention-hours: expected a finite number"),
        (("gc", "{root}", "--retention-hours", "1e30"), "argument --retention-hours"),
        (("gc", "{root}", "--retention-hours", "nan", "--dry-run"), "argument --retention-hours"),
        (("gc", "{root}", "--retention-hours", "-1"), "argument --retention-hours"),
        (("sample", "{root}", "--out", "{out}/s.png", "-n", "99999999999999999999"), "argument -n"),
        (("sample", "{root}", "--out", "{out}/s.png", "--pairs", "--seconds", "inf"), "argument --seconds"),
        (("sample", "{root}", "--out", "{out}/s.png", "--pairs", "--seconds", "0"), "argument --seconds"),
        (("snapshot", "{root}", "--version", "clips=99999999999999999999"), "argument --version: expected TABLE=N"),
        (("snapshot", "{root}", "--version", "clips"), "argument --version: expected TABLE=N"),
        (("snapshot", "{root}", "--version", "clip=1"), "argument --version: unknown table 'clip'"),
    ],
)
def test_manifests_numbers_out_of_range_are_one_usage_line(hostile, tmp_path, capsys, args, text):
    with pytest.raises(SystemExit) as stopped:
        manifests_main([a.format(root=hostile, out=tmp_path) for a in args])
    err = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: {text}"), err
    assert len(err) < 200  # a 5,000-digit argument is quoted back cut short


def test_a_column_named_twice_is_shown_once(hostile, tmp_path, capsys):
    assert manifests_main(["head", str(hostile), "scores", "-n", "2", "--columns", "value,signal,value"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["value", "signal"]
    assert manifests_main(["stats", str(hostile), "scores", "value", "value", "--out", str(tmp_path), "--json"]) == 0
    assert capsys.readouterr().out.count("scores.value.png") == 1


def test_the_ends_of_each_range_are_accepted(hostile, capsys):
    assert manifests_main(["head", str(hostile), "scores", "-n", "0", "--json"]) == 0
    assert '"rows": []' in capsys.readouterr().out
    assert int_in(0, 10)("10") == 10 and float_in(0.0, 1e6)("1e6") == 1e6 and float_in(0.1, 60.0)("0.1") == 0.1


@pytest.mark.parametrize(
    "cli, args, text",
    [
        ("curation.shots", ["video.mp4", "--threshold", "nan"], "argument --threshold"),
        ("curation.shots", ["video.mp4", "--threshold", "inf"], "argument --threshold"),
        ("curation.corpus", ["{out}/corpus", "--seed", "-1"], "argument --seed"),
        ("curation.corpus", ["{out}/corpus", "--videos", "-1"], "argument --videos"),
        ("curation.corpus", ["{out}/corpus", "--videos", "99999999999999999999"], "argument --videos"),
    ],
)
def test_curation_numbers_out_of_range_are_one_usage_line(tmp_path, capsys, cli, args, text):
    with pytest.raises(SystemExit) as stopped:
        CURATION_MAINS[cli]([a.format(out=tmp_path) for a in args])
    err = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: {text}"), err
    assert not (tmp_path / "corpus").exists()  # refused before anything was written


def test_shots_error_line_escapes_the_file_name(tmp_path, capsys):
    assert shots_main([str(tmp_path / f"{HOSTILE_NAME}.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and not hidden_characters(err), err
