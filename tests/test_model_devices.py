"""Where the model stages run and how they wait for a GPU: the wait mode's setting on any machine, and on a
GPU machine the driver's own report of the mode the stages' device call left on the primary context."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from curation.models.devices import CUDA_WAIT_ENV, cuda_wait_mode, primary_context_wait, set_cuda_wait, torch_device

torch = pytest.importorskip("torch")
GPU = torch.cuda.is_available()


def test_wait_mode_defaults_to_blocking_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(CUDA_WAIT_ENV, raising=False)
    assert cuda_wait_mode() == "blocking"
    monkeypatch.setenv(CUDA_WAIT_ENV, " Spin ")
    assert cuda_wait_mode() == "spin"
    monkeypatch.setenv(CUDA_WAIT_ENV, "busy")
    with pytest.raises(ValueError, match="LIVEDITOR_CUDA_WAIT='busy'.*blocking"):
        cuda_wait_mode()


def test_cpu_device_touches_no_driver(monkeypatch):
    monkeypatch.setenv(CUDA_WAIT_ENV, "busy")  # would raise if a CPU device asked for the wait mode
    assert torch_device("cpu") == "cpu"
    if not GPU:
        assert torch_device("auto") == "cpu"
        assert set_cuda_wait("blocking") is False  # no driver or no GPU: nothing set, and it says so
        assert primary_context_wait() is None


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["blocking", "spin"])
def test_gpu_primary_context_waits_as_asked(mode):
    """In a fresh process (the context is made once per process): the stages' device call, then a kernel,
    then the driver's flags of the context torch made."""
    code = ("import torch; from curation.models.devices import torch_device, primary_context_wait;"
            "d = torch_device('auto'); torch.ones(8, device=d).sum().item(); print(d, primary_context_wait())")
    env = {**os.environ, CUDA_WAIT_ENV: mode}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cuda", mode]
