"""Compile the Triton ISA forward with and without fp8 scores (FP8) for sm_90a on a machine without a GPU and
print one JSON line per launch shape: how many of its MMAs are Hopper's e4m3 warpgroup MMAs.

Run as a script with TRITON_INTERPRET=0, as _gluon_compile.py is (its compile-only sm_90 driver is reused).
"""
from __future__ import annotations

import json
import re

import torch
import triton
from _gluon_compile import _Sm90Compiler, _summary


def main() -> None:
    from kernels.isa_config import TileConfig
    from kernels.isa_forward import FP8, _isa_fwd_kernel, block_descriptor

    triton.runtime.driver.set_active(_Sm90Compiler())
    tiles = TileConfig()
    i32, f32 = torch.zeros(4, dtype=torch.int32), torch.zeros(4)
    sizes = (2, 100, 256, 256, 2, 4, 4, 0.1, 0.1)  # H, n_tgt, n_tot, n_q, nbt, nb, nbq, scales: values unused
    launches = [("fwd sharp", tiles.fwd_sharp_gq, tiles.fwd_key_blocks, tiles.fwd_warps, tiles.fwd_stages, False),
                ("fwd flat", 1, 1, tiles.flat_warps, tiles.flat_stages, True)]
    for d in (128, 64):
        x = torch.zeros(1, 2, 256, d, dtype=torch.bfloat16)
        x8 = torch.zeros(1, 2, 256, d, dtype=FP8)
        for fp8 in (True, False):
            for name, g, kb, warps, stages, mean in launches:
                exact_k, q8 = (x8, x8) if fp8 else (x, x)
                compiled = _isa_fwd_kernel.warmup(x, block_descriptor(exact_k, 64), block_descriptor(x, 64), x, f32,
                                                  x, x, i32, *[i32] * 6, q8, f32, *sizes, D=d, BLK=64, GQ=g,
                                                  BP=tiles.mean_tile, HAS_MEAN=mean, KP=kb, WS=False, FP8=fp8,
                                                  num_warps=warps, num_stages=stages, grid=(1,))
                ptx = compiled.asm["ptx"]
                print(json.dumps({**_summary(name, compiled), "d": d, "g": g, "fp8": fp8,
                                  "e4m3_wgmma": len(re.findall(r"wgmma\.mma_async\S*\.e4m3\.e4m3", ptx))}))


if __name__ == "__main__":
    main()
