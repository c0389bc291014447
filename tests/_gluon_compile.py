"""Compile the Hopper Gluon kernels for sm_90a on a machine without a GPU and print one JSON line per kernel.

Run as a script with TRITON_INTERPRET=0 (the interpreter, which `kernels` turns on without a GPU, cannot
compile Gluon). A stand-in for Triton's CUDA driver reports an sm_90 target and never touches libcuda;
`warmup` then runs the whole compiler, ptxas included, without launching anything.
"""
from __future__ import annotations

import json
import re

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.driver import CudaDriver


class _Sm90Compiler(CudaDriver):
    """Triton's CUDA driver without the device: an sm_90 target for compilation only."""

    def __init__(self) -> None:  # CudaDriver.__init__ loads libcuda, which this machine lacks
        self.get_current_device = lambda: 0
        self.set_current_device = lambda device: None
        self.get_current_stream = lambda device=None: 0

    def get_current_target(self) -> GPUTarget:
        return GPUTarget("cuda", 90, 32)

    def get_active_torch_device(self) -> torch.device:
        return torch.device("cpu")

    def get_device_interface(self):
        return torch.cuda


def _summary(name: str, compiled) -> dict:
    ptx = compiled.asm["ptx"]
    return {"kernel": name, "shared": compiled.metadata.shared, "warps": compiled.metadata.num_warps,
            "wgmma": len(re.findall(r"wgmma\.mma_async", ptx)), "setmaxnreg": "setmaxnreg" in ptx}


def main() -> None:
    from kernels.isa_backward_hopper import _isa_dkdv_hopper
    from kernels.isa_config import TileConfig
    from kernels.isa_forward_hopper import MAX_REGS, _descriptor, _isa_fwd_hopper

    triton.runtime.driver.set_active(_Sm90Compiler())
    tiles = TileConfig()
    i32, f32 = torch.zeros(4, dtype=torch.int32), torch.zeros(4)
    sizes = (100, 256, 256, 2, 4, 0.1)  # n_tgt, n_tot, n_q, nbt, nb, qk_scale: values do not matter here
    for d in (128, 64):
        x = torch.zeros(1, 2, 256, d, dtype=torch.bfloat16)
        desc, out = _descriptor(x, 64), torch.zeros(1, dtype=torch.bfloat16)
        forward = [("fwd sharp", 2, tiles.hopper_key_blocks, tiles.hopper_stages, False),
                   ("fwd sharp, dropped-mean", 2, tiles.hopper_key_blocks, tiles.hopper_stages, True),
                   ("fwd flat", 1, 1, tiles.hopper_flat_stages, True)]
        for name, g, kb, stages, mean in forward:
            compiled = _isa_fwd_hopper.warmup(desc, desc, desc, desc, desc, out, f32, *[i32] * 7, *sizes,
                                              G=g, KB=kb, STAGES=stages, HAS_MEAN=mean, num_warps=4,
                                              maxnreg=MAX_REGS[g], grid=(1,))
            print(json.dumps({**_summary(name, compiled), "d": d, "g": g}))
        dkdv = [("dkdv sharp", 2, tiles.dkdv_hopper_stages, False),
                ("dkdv every key", 1, tiles.dkdv_hopper_flat_stages, True)]
        for name, g, stages, mean in dkdv:
            compiled = _isa_dkdv_hopper.warmup(desc, desc, desc, desc, out, out, *[f32] * 4, *[i32] * 6, *sizes,
                                               0.08, G=g, STAGES=stages, ADD_MEAN=mean, num_warps=4,
                                               maxnreg=MAX_REGS[g], grid=(1,))
            print(json.dumps({**_summary(name, compiled), "d": d, "g": g}))


if __name__ == "__main__":
    main()
