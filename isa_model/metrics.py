"""Image quality metrics on videos in [-1, 1] (computed in [0, 1]): PSNR, masked PSNR, SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1) / 2


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample PSNR in dB of (B, C, T, H, W) videos; `mask` (B, T, H, W) in {0, 1} restricts the pixels.

    Samples whose mask is empty give NaN (no pixels to compare)."""
    err = (_unit(a) - _unit(b)) ** 2  # (B, C, T, H, W)
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = mask.float()[:, None].expand_as(err)
        mse = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample SSIM (Gaussian window 11, sigma 1.5, per frame and channel, averaged) of (B, C, T, H, W)."""
    bsz, c, t, h, w = a.shape
    x = _unit(a).permute(0, 2, 1, 3, 4).reshape(bsz * t * c, 1, h, w)
    y = _unit(b).permute(0, 2, 1, 3, 4).reshape(bsz * t * c, 1, h, w)
    g = _gaussian((min(11, h, w) - 1) // 2 * 2 + 1).to(x.device)  # odd, no larger than the frame
    k = len(g)

    def blur(z: torch.Tensor) -> torch.Tensor:
        z = F.conv2d(z, g.view(1, 1, 1, k))
        return F.conv2d(z, g.view(1, 1, k, 1))

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.reshape(bsz, -1).mean(1)
