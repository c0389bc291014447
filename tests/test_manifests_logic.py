"""Pure pieces: COCO RLE, key hashing, URI confinement, the filter-expression parser."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pycocotools import mask as coco_mask

from manifests import SCHEMAS, ManifestError, rle_decode, rle_encode
from manifests.expr import parse_filter
from manifests.keyhash import count_missing, hash_rows, hash_strings, missing_from, sorted_unique
from manifests.rle import run_lengths
from manifests.uris import escapes_root, resolve_uri, uri_problems


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (5, 3), (33, 17), (480, 640)])
@pytest.mark.parametrize("kind", ["empty", "full", "random", "blob", "checker"])
def test_rle_round_trip_is_exact(shape, kind):
    rng = np.random.default_rng(sum(shape))
    h, w = shape
    mask = {
        "empty": np.zeros(shape, bool),
        "full": np.ones(shape, bool),
        "random": rng.random(shape) < 0.4,
        "blob": np.pad(np.ones((max(1, h // 2), max(1, w // 2)), bool), ((0, h - max(1, h // 2)), (0, w - max(1, w // 2)))),
        "checker": (np.add.outer(np.arange(h), np.arange(w)) % 2).astype(bool),
    }[kind]
    counts = rle_encode(mask)
    assert isinstance(counts, str)
    assert np.array_equal(rle_decode(counts, h, w), mask)
    assert sum(run_lengths(counts)) == h * w


def test_rle_matches_pycocotools_and_handles_zero_area():
    mask = np.zeros((6, 5), np.uint8)
    mask[1:4, 2:5] = 1
    ref = coco_mask.encode(np.asfortranarray(mask))["counts"].decode()
    assert rle_encode(mask) == ref and rle_encode(mask.astype(bool)) == ref
    assert rle_decode(rle_encode(np.zeros((0, 4), bool)), 0, 4).shape == (0, 4)


@pytest.mark.parametrize(
    "counts, h, w, message",
    [("01400000", 4, 5, "cover 16 pixels, mask 4x5 has 20"), ("0\x7f", 1, 1, "invalid character"),
     ("0i", 2, 2, "ends inside a number"), ("0é", 1, 1, "ASCII")],
)
def test_rle_decode_rejects_bad_counts(counts, h, w, message):
    with pytest.raises(ManifestError, match=message):
        rle_decode(counts, h, w)


def test_rle_encode_rejects_bad_masks():
    with pytest.raises(ManifestError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2), bool))
    with pytest.raises(ManifestError, match="other than 0/1"):
        rle_encode(np.full((2, 2), 3))


def test_string_hash_is_stable_across_layouts_and_distinguishes_near_misses():
    values = pa.array(["", "a", None, "ab", "ba", "a" * 300, "a" * 299 + "b", "clip-0000001", "clip-0000010",
                       "abcdefgh", "abcdefgh\x00", "abcdefg"])
    h = hash_strings(values)
    assert len(set(h.tolist())) == len(values)
    assert np.array_equal(hash_strings(values.slice(3, 4)), h[3:7])
    assert np.array_equal(hash_strings(values.dictionary_encode()), h)
    assert np.array_equal(hash_strings(values.cast(pa.large_string())), h)
    assert np.array_equal(hash_strings(pa.chunked_array([values[:4], values[4:]])), h)
    ids = pa.array([f"{i:016x}-{i % 97:07d}" for i in range(200_000)])
    assert len(np.unique(hash_strings(ids))) == 200_000


def test_row_hash_dup_and_membership():
    keys = hash_rows([hash_strings(pa.array(["c1", "c1", "c2", "c1"])),
                      hash_strings(pa.array(["blur", "motion", "blur", "blur"]))])
    distinct, repeated = sorted_unique(keys)
    assert len(distinct) == 3 and repeated.tolist() == [keys[0]]
    reference = np.sort(hash_strings(pa.array(["c1", "c2"])))
    assert missing_from(hash_strings(pa.array(["c2", "c9"])), reference).tolist() == [False, True]
    assert count_missing(hash_strings(pa.array(["c9", "c2", "c8", "c9"])), reference) == 3
    assert missing_from(hash_strings(pa.array(["c2"])), np.empty(0, np.uint64)).tolist() == [True]


@pytest.mark.parametrize(
    "uri, escapes", [("a/../b", False), ("a/../../b", True), ("..", True), ("./x/./y", False), ("x/..\\..\\y", True)]
)
def test_escapes_root(uri, escapes):
    assert escapes_root(uri) is escapes


def test_uri_problems_by_kind():
    values = pa.array(["clips/a.mp4", None, "", "/abs/x", "s3://b/k", "C:\\x", "../up", "a/../b"])
    strict = {k: v.tolist() for k, v in uri_problems(values, allow_absolute=False).items()}
    assert strict["empty"] == [False, False, True, False, False, False, False, False]
    assert strict["absolute"] == [False, False, False, True, True, True, False, False]
    assert strict["escapes"] == [False, False, False, False, False, False, True, False]
    assert not uri_problems(values, allow_absolute=True)["absolute"].any()


def _rows(expr_text, table):
    data = pa.table({"clip_id": ["a", "b", "c", "d"], "signal": ["blur", "blur", "motion", "luma"],
                     "value": [1.0, 7.0, 9.0, None], "passed": [True, False, True, None]})
    return data.filter(parse_filter(expr_text, SCHEMAS[table])).column("clip_id").to_pylist()


@pytest.mark.parametrize(
    "text, expected",
    [
        ('signal == "blur" and value > 5', ["b"]),
        ("value > 5 or passed", ["a", "b", "c"]),
        ('signal in ["motion", "luma"]', ["c", "d"]),
        ('signal not in ("blur",)', ["c", "d"]),
        ("value is None", ["d"]),
        ("value is not null", ["a", "b", "c"]),
        ("not passed", ["b"]),
        ("2 < value <= 9", ["b", "c"]),
        ("8 < value", ["c"]),
        ("value >= -1.5", ["a", "b", "c"]),
        ("passed == True", ["a", "c"]),
    ],
)
def test_filter_expressions_select_the_right_rows(text, expected):
    assert _rows(text, "scores") == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ('__import__("os").system("true")', "Call"),
        ("value + 1 > 2", "expected a column name"),
        ("colour == 1", "unknown column 'colour'"),
        ('value > "x"', "does not match column type double"),
        ("value == None", "is None"),
        ("signal", "not boolean"),
        ("value >", "syntax error"),
        ("signal in other", "needs a list"),
        ("value.real > 1", "Attribute"),
        ("[x for x in y]", "ListComp"),
    ],
)
def test_filter_rejects_everything_else_in_one_line(text, message):
    with pytest.raises(ManifestError, match=message) as err:
        parse_filter(text, SCHEMAS["scores"])
    assert "\n" not in str(err.value)


def test_filter_expression_is_a_pyarrow_expression():
    assert isinstance(parse_filter("value > 1", SCHEMAS["scores"]), pc.Expression)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("", "empty"), ("  ", "empty"), ("../x.mp4", "escapes"), ("a/../../x.mp4", "escapes"),
        ("/etc/passwd", "relative"), ("file:///etc/passwd", "relative"), ("file:clips/a.mp4", "relative"),
        ("~/clips/a.mp4", "relative"), ("s3://bucket/a.mp4", "relative"), ("C:\\\\clips\\\\a.mp4", "relative"),
        ("clips/link.mp4", "outside the dataset root"),
    ],
)
def test_resolve_uri_refuses_everything_that_leaves_the_root(tmp_path, uri, message):
    (tmp_path / "root/clips").mkdir(parents=True)
    (tmp_path / "root/clips/link.mp4").symlink_to(tmp_path / "outside.mp4")
    with pytest.raises(ManifestError, match=message):
        resolve_uri(tmp_path / "root", uri)


def test_resolve_uri_keeps_paths_under_the_root(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips/inner.mp4").symlink_to(tmp_path / "clips/a.mp4")
    assert resolve_uri(tmp_path, "clips/a.mp4") == tmp_path.resolve() / "clips/a.mp4"
    assert resolve_uri(tmp_path, "clips/./x/../inner.mp4").name == "inner.mp4"
