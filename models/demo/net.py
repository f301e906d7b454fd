"""The demo model's network: a small MONAI residual backbone with a class-activation head.

Imports torch and MONAI at module level: import this module only where training or export
happens (:mod:`models.demo.build` imports it lazily), never on the serving path.

The head is a 1x1 convolution from the backbone's features to one channel per label: that map is
the ``heatmap`` output (per-location logits, ``[N, L, h, w]``), and the ``logits`` output is its
log-sum-exp pooling over space. The heatmap is therefore exactly the evidence the score is made
of, not a post-hoc approximation.
"""

from __future__ import annotations

import logging

import torch
from monai.networks.blocks.convolutions import Convolution, ResidualUnit
from torch import nn

__all__ = ["DemoNet"]

logger = logging.getLogger(__name__)


class DemoNet(nn.Module):
    """Residual CNN, 1x1 class-activation head, log-sum-exp pooling.

    Parameters
    ----------
    n_labels
        Number of output labels.
    channels
        Channels of the stem and of each residual stage.
    strides
        Stride of each residual stage (after the stride-2 stem).
    pool_sharpness
        ``r`` of the log-sum-exp pooling: small is close to the mean, large close to the max.
    """

    def __init__(
        self,
        n_labels: int = 5,
        channels: tuple[int, ...] = (16, 24, 48, 64),
        strides: tuple[int, ...] = (2, 2, 1),
        pool_sharpness: float = 8.0,
    ) -> None:
        super().__init__()
        if len(strides) != len(channels) - 1:
            raise ValueError("need one stride per residual stage (len(channels) - 1)")
        layers: list[nn.Module] = [
            Convolution(2, 1, channels[0], strides=2, kernel_size=5, norm="BATCH", act="RELU")
        ]
        for c_in, c_out, stride in zip(channels[:-1], channels[1:], strides, strict=True):
            layers.append(
                ResidualUnit(
                    spatial_dims=2,
                    in_channels=c_in,
                    out_channels=c_out,
                    strides=stride,
                    subunits=2,
                    norm="BATCH",
                    act="RELU",
                )
            )
        self.backbone = nn.Sequential(*layers)
        self.cam = nn.Conv2d(channels[-1], n_labels, kernel_size=1)
        self.pool_sharpness = float(pool_sharpness)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a batch.

        Parameters
        ----------
        image
            ``[N, 1, H, W]`` float32 in [0, 1].

        Returns
        -------
        tuple of torch.Tensor
            ``logits`` ``[N, L]`` and ``heatmap`` ``[N, L, h, w]`` (both before the sigmoid).
        """
        heatmap = self.cam(self.backbone(image))
        r = self.pool_sharpness
        flat = heatmap.flatten(2)
        peak = flat.amax(dim=2, keepdim=True)
        # log(mean(exp(r * h))) / r, shifted by the peak for numerical stability
        logits = torch.log(torch.mean(torch.exp(r * (flat - peak)), dim=2)) / r + peak[..., 0]
        return logits, heatmap
