"""Bilinear splatting onto 2-D grids with a weight grid.

The one primitive behind two parts of T-NeRF: lifting per-pixel features onto the tri-plane, and the dynamic
variant's "flow" token interpolation (features moved to fractional patch positions and splatted back onto the grid).
"""

from __future__ import annotations

from typing import Tuple

import torch
from jaxtyping import Float
from torch import Tensor


def bilinear_splat(
    coords: Float[Tensor, "*b n 2"],
    values: Float[Tensor, "*b n c"],
    weights: Float[Tensor, "*b n"],
    grid_hw: Tuple[int, int],
) -> Tuple[Float[Tensor, "*b c h w"], Float[Tensor, "*b h w"]]:
    """Splat values at fractional (x = column, y = row) positions onto the four surrounding cells.

    Each value lands on its four neighbouring cells with bilinear weights times its own weight; the accumulated
    weights are returned alongside so the caller can normalise (``acc / wsum``) and detect empty cells. Corners that
    fall outside the grid are dropped. Differentiable in values, weights and coordinates. Leading batch axes are
    independent grids.

    Returns:
        ``acc`` (weighted sums, channels first) and ``wsum`` (accumulated weights).
    """
    height, width = grid_hw
    batch_shape = coords.shape[:-2]
    n, c = values.shape[-2:]
    coords = coords.reshape(-1, n, 2)
    values = values.reshape(-1, n, c)
    weights = weights.reshape(-1, n)
    b = coords.shape[0]

    x, y = coords[..., 0], coords[..., 1]
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    corners = []
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        cx, cy = x0.long() + dx, y0.long() + dy
        inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
        idx = cy.clamp(0, height - 1) * width + cx.clamp(0, width - 1)
        corners.append((idx, w * weights * inside))
    idx = torch.cat([i for i, _ in corners], dim=1)  # [b, 4n]
    wts = torch.cat([w for _, w in corners], dim=1)
    # offset every grid of the batch into one flat buffer so a single index_add does everything
    flat_idx = (idx + torch.arange(b, device=idx.device)[:, None] * (height * width)).reshape(-1)
    src = (values.repeat(1, 4, 1) * wts[..., None]).reshape(-1, c)
    acc = torch.zeros(b * height * width, c, device=values.device, dtype=values.dtype).index_add_(0, flat_idx, src)
    wsum = torch.zeros(b * height * width, device=values.device, dtype=values.dtype).index_add_(
        0, flat_idx, wts.reshape(-1)
    )
    acc = acc.reshape(b, height, width, c).permute(0, 3, 1, 2)
    return acc.reshape(*batch_shape, c, height, width), wsum.reshape(*batch_shape, height, width)
