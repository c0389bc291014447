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


def test_gluon_kernels_compile_for_sm90(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(root / "tests" / "_gluon_compile.py")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 10, run.stdout
    for row in rows:
        assert row["shared"] <= SM90_SHARED_PER_BLOCK, row
        assert row["wgmma"] > 0 and row["setmaxnreg"], row
        assert row["warps"] == (12 if row["g"] == 2 else 8), row  # consumer warpgroups + the producer's
        if row["kernel"] == "fwd flat":
            assert 2 * (row["shared"] + 1024) <= SM90_SHARED_PER_SM, row
