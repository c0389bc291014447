"""LIVEditor: the in-context video editing model with ISA attention (docs/MODEL.md)."""

# kernels first: without a GPU it sets TRITON_INTERPRET before anything (open_clip -> timm) imports triton.
import kernels  # noqa: F401
