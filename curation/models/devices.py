"""Which torch device a model stage runs on (`auto` is the GPU Ray gave the actor, else the CPU), and how its
threads wait for that GPU.

CUDA's default for a process with one context on a machine of many cores is to spin a core while it waits
for the GPU. Model stages pack several actors onto one GPU (num_gpus 1/8, 1/16), so most of the time each
actor waits behind the others: spinning, 16 actors kept 16 cores busy doing nothing while the host work
that feeds the GPU (decoding, YOLO's tracker, carrying masks) waited for a core. So the primary context of
every visible GPU is set to block on a synchronisation primitive instead, before torch first uses it.
`LIVEDITOR_CUDA_WAIT` (blocking | spin | yield | auto) overrides it, e.g. to measure the difference.
"""

from __future__ import annotations

import ctypes
import os

CUDA_WAIT_ENV = "LIVEDITOR_CUDA_WAIT"
# CU_CTX_SCHED_* of the CUDA driver API (cuda.h)
SCHEDULE_FLAGS = {"auto": 0, "spin": 1, "yield": 2, "blocking": 4}
SCHEDULE_MASK = 7


def cuda_wait_mode() -> str:
    """The wait mode asked for: `LIVEDITOR_CUDA_WAIT`, or blocking."""
    mode = os.environ.get(CUDA_WAIT_ENV, "blocking").strip().lower() or "blocking"
    if mode not in SCHEDULE_FLAGS:
        raise ValueError(f"{CUDA_WAIT_ENV}={mode!r}: expected one of {', '.join(SCHEDULE_FLAGS)}")
    return mode


def _driver() -> ctypes.CDLL | None:
    """The CUDA driver library, or None on a machine without one."""
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None


def set_cuda_wait(mode: str) -> bool:
    """Set the scheduling flag of every visible GPU's primary context (the one torch uses) to `mode`.

    Returns False where no CUDA driver or GPU is found. Called before torch's first CUDA call, the
    context is created with the flag; the driver also applies it to a context that is already active.
    """
    driver = _driver()
    if driver is None or driver.cuInit(0) != 0:
        return False
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return False
    for ordinal in range(count.value):
        device = ctypes.c_int(0)
        if driver.cuDeviceGet(ctypes.byref(device), ordinal) != 0:
            return False
        if driver.cuDevicePrimaryCtxSetFlags_v2(device, SCHEDULE_FLAGS[mode]) != 0:
            return False
    return True


def primary_context_wait(ordinal: int = 0) -> str | None:
    """The wait mode of a GPU's primary context as the driver reports it (None: no driver or GPU)."""
    driver = _driver()
    if driver is None or driver.cuInit(0) != 0:
        return None
    device, flags, active = ctypes.c_int(0), ctypes.c_uint(0), ctypes.c_int(0)
    if driver.cuDeviceGet(ctypes.byref(device), ordinal) != 0:
        return None
    if driver.cuDevicePrimaryCtxGetState(device, ctypes.byref(flags), ctypes.byref(active)) != 0:
        return None
    by_flag = {v: k for k, v in SCHEDULE_FLAGS.items()}
    return by_flag.get(flags.value & SCHEDULE_MASK)


def torch_device(name: str) -> str:
    """`auto` -> "cuda" when this process sees a GPU (an actor with num_gpus > 0), else "cpu"; others as given.

    A CUDA device gets its wait mode (`cuda_wait_mode`) set on the way.
    """
    if name == "auto":
        import torch

        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        set_cuda_wait(cuda_wait_mode())
    return name
