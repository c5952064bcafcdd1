"""MiniFASNetV2 and MiniFASNetV1SE, the two passive anti-spoofing networks of Silent-Face.

Written from the layer names and shapes of the published state_dicts (Silent-Face-Anti-Spoofing,
Apache-2.0), not copied: a MobileFaceNet-style stack of 1x1 expand / 3x3 depthwise / 1x1 project
blocks, four stride-2 steps from 80x80 down to 5x5, then a 5x5 depthwise "global" convolution, an
embedding of 128 and 3 logits (index 1 = real; 0 and 2 = two kinds of attack). The expansion
widths differ per block (the models were pruned), so they are listed here as the files have them.

This module imports torch; recognition.liveness.passive imports it only when a model loads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

KERNEL_80 = (5, 5)
"""conv6's depthwise kernel for 80x80 input: 80 / 2**4 = 5 (upstream's constructor default, 7x7,
is for 112x112 and does not load these files)."""


class ConvBlock(nn.Module):
    """conv (no bias) -> batch norm -> PReLU; ``activate=False`` leaves the PReLU out (the
    linear "project" layers)."""

    def __init__(
        self,
        in_c: int,
        out_c: int,
        kernel: int | tuple[int, int] = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        *,
        activate: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_c)
        self.prelu = nn.PReLU(out_c) if activate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.prelu is not None else x


class SqueezeExcite(nn.Module):
    """Channel attention: pool, squeeze by ``reduction``, expand, sigmoid, scale (with batch
    norm after each 1x1 convolution, as the weight files have it)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.relu(self.bn1(self.fc1(w)))
        w = torch.sigmoid(self.bn2(self.fc2(w)))
        return x * w


class DepthWise(nn.Module):
    """Inverted bottleneck: 1x1 to ``width`` channels, 3x3 depthwise, 1x1 linear projection.

    A residual block (stride 1, same channels) adds its input back; ``se`` puts a
    squeeze-and-excite on the projection before that addition.
    """

    def __init__(self, in_c: int, out_c: int, width: int, *, stride: int, residual: bool, se: bool = False) -> None:
        super().__init__()
        self.conv = ConvBlock(in_c, width, 1)
        self.conv_dw = ConvBlock(width, width, 3, stride, 1, groups=width)
        self.project = ConvBlock(width, out_c, 1, activate=False)
        self.residual = residual
        self.se_module = SqueezeExcite(out_c) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class ResidualStage(nn.Module):
    """Residual DepthWise blocks at one resolution; ``se_last`` adds SE to the stage's last block."""

    def __init__(self, channels: int, widths: Sequence[int], *, se_last: bool) -> None:
        super().__init__()
        last = len(widths) - 1
        self.model = nn.Sequential(
            *(
                DepthWise(channels, channels, w, stride=1, residual=True, se=se_last and i == last)
                for i, w in enumerate(widths)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MiniFASNet(nn.Module):
    """The shared skeleton; ``widths`` holds each block's expansion width, in file order:
    conv_23, conv_3 (4 blocks), conv_34, conv_4 (6), conv_45, conv_5 (2)."""

    def __init__(self, widths: Sequence[int], *, se: bool, num_classes: int = 3, embedding: int = 128) -> None:
        super().__init__()
        if len(widths) != 15:
            raise ValueError(f"MiniFASNet needs 15 block widths, got {len(widths)}")
        w = list(widths)
        self.conv1 = ConvBlock(3, 32, 3, 2, 1)
        self.conv2_dw = ConvBlock(32, 32, 3, 1, 1, groups=32)
        self.conv_23 = DepthWise(32, 64, w[0], stride=2, residual=False)
        self.conv_3 = ResidualStage(64, w[1:5], se_last=se)
        self.conv_34 = DepthWise(64, 128, w[5], stride=2, residual=False)
        self.conv_4 = ResidualStage(128, w[6:12], se_last=se)
        self.conv_45 = DepthWise(128, 128, w[12], stride=2, residual=False)
        self.conv_5 = ResidualStage(128, w[13:15], se_last=se)
        self.conv_6_sep = ConvBlock(128, 512, 1)
        self.conv_6_dw = ConvBlock(512, 512, KERNEL_80, groups=512, activate=False)
        self.linear = nn.Linear(512, embedding, bias=False)
        self.bn = nn.BatchNorm1d(embedding)
        self.prob = nn.Linear(embedding, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 3, 80, 80) BGR 0-255 floats to (n, 3) logits."""
        x = self.conv2_dw(self.conv1(x))
        x = self.conv_3(self.conv_23(x))
        x = self.conv_4(self.conv_34(x))
        x = self.conv_5(self.conv_45(x))
        x = self.conv_6_dw(self.conv_6_sep(x))
        return self.prob(self.bn(self.linear(x.flatten(1))))


# Expansion widths read off the weight files (the 'conv.conv.weight' output channels per block).
MINIFASNET_V2_WIDTHS = (103, 13, 13, 13, 13, 231, 231, 52, 26, 77, 26, 26, 308, 26, 26)
MINIFASNET_V1SE_WIDTHS = (103, 13, 26, 13, 52, 231, 154, 52, 26, 52, 26, 26, 308, 26, 26)


def minifasnet_v2() -> MiniFASNet:
    return MiniFASNet(MINIFASNET_V2_WIDTHS, se=False)


def minifasnet_v1se() -> MiniFASNet:
    return MiniFASNet(MINIFASNET_V1SE_WIDTHS, se=True)


def load_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Load a training checkpoint's state_dict strictly, without DataParallel's 'module.' prefix."""
    cleaned = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    model.load_state_dict(cleaned, strict=True)
    return model.eval()
