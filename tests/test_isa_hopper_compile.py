"""The Hopper Gluon kernels compile for sm_90a here, without a GPU (their results are tested on the GPU by
test_isa_hopper.py): the default ring shapes fit in shared memory, flat programs two per SM, and the code
uses warpgroup MMAs with warp-group register reallocation."""
import json
import os
import subprocess
import sys
from pathlib import Path

SM90_SHARED_PER_BLOCK = 232448  # 227 KB, the most one program may take
SM90_SHARED_PER_SM = 233472  # 228 KB; each resident program also reserves 1 KB


def _compiled_rows(script: str, tmp_path: Path) -> list[dict]:
    """The JSON rows a compile-only script of tests/ prints (the interpreter off, its own Triton cache)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(root / "tests" / script)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def test_gluon_kernels_compile_for_sm90(tmp_path):
    rows = _compiled_rows("_gluon_compile.py", tmp_path)
    assert len(rows) == 10, rows
    for row in rows:
        assert row["shared"] <= SM90_SHARED_PER_BLOCK, row
        assert row["wgmma"] > 0 and row["setmaxnreg"], row
        assert row["warps"] == (12 if row["g"] == 2 else 8), row  # consumer warpgroups + the producer's
        if row["kernel"] == "fwd flat":
            assert 2 * (row["shared"] + 1024) <= SM90_SHARED_PER_SM, row


def test_triton_forward_with_fp8_scores_compiles_to_e4m3_mma_for_sm90(tmp_path):
    """TileConfig.fwd_fp8 (tests/test_isa_fp8.py checks its values on the interpreter): for sm_90a its score
    MMAs are e4m3 warpgroup MMAs, and without it none are."""
    rows = _compiled_rows("_fp8_compile.py", tmp_path)
    assert len(rows) == 8, rows  # head dims 128 and 64, fp8 on and off, sharp and flat launches
    for row in rows:
        assert row["shared"] <= SM90_SHARED_PER_BLOCK and row["wgmma"] > 0, row
        assert (row["e4m3_wgmma"] > 0) == row["fp8"], row
