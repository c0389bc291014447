"""Where the ISA tests put their tensors: the GPU when there is one. Triton runs its CPU interpreter only where
no GPU exists (`kernels` turns it on then), so on a GPU host the Triton kernels need CUDA tensors."""
import torch

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
