"""The detector's architectures; each maps (N, 1, H, W) to (score logit, map logits).

The ablation's four rows are ``basic``, ``resnet`` and ``proposed`` (with and without
augmentation); ``deep`` and ``logres`` are variants of ``proposed`` that `make train --arch`
and the recipe runs can train instead.

* ``basic``: three plain strided convolutions, the paper's "basic CNN (3 layers)".
* ``resnet``: a small ResNet (7×7 stem, max-pool, three stages of basic blocks), trained from
  scratch: no pretrained weights can be downloaded here, so it stands in for "ResNet50 transfer".
* ``proposed``: fixed high-pass residual filters in front (forensic noise traces), strided
  convolutions with residual blocks, a skip-connected decoder for a stride-4 localisation map,
  and an image score from the global max of the deepest features and of the map.
* ``deep``: ``proposed`` with a fourth stage at stride 16; ``logres``: ``proposed`` with the
  Laplacian of the log image as a fifth fixed channel.
* ``residual``: ``proposed``'s body behind a bank of ten fixed 5×5 residual filters (SRM-like),
  each normalised by the image's own residual level, and an image score on features
  normalised over the same image.

The map has stride 4 for ``proposed`` and its variants and stride 8 for the others (56×56 or
28×28 for a 224×224 input). Only ``torch`` is imported; the runtime never imports this module.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, dilation=dilation),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return functional.relu(x + self.body(x))


def _high_pass() -> nn.Conv2d:
    """Fixed filters: the image itself, a Laplacian and two second differences (×8)."""
    kernels = torch.zeros(4, 1, 3, 3)
    kernels[0, 0, 1, 1] = 1.0
    kernels[1, 0] = torch.tensor([[0, -1, 0], [-1, 4, -1], [0, -1, 0]]) * 8.0
    kernels[2, 0] = torch.tensor([[0, 0, 0], [-1, 2, -1], [0, 0, 0]]) * 8.0
    kernels[3, 0] = torch.tensor([[0, -1, 0], [0, 2, 0], [0, -1, 0]]) * 8.0
    conv = nn.Conv2d(1, 4, 3, padding=1, bias=False, padding_mode="reflect")
    conv.weight.data.copy_(kernels)
    conv.weight.requires_grad_(False)
    return conv


def _global_max(x: Tensor) -> Tensor:
    return torch.amax(x, dim=(2, 3))


class Basic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(_conv(1, 16, 2), _conv(16, 32, 2), _conv(32, 64, 2))
        self.map = nn.Conv2d(64, 1, 1)
        self.score = nn.Linear(64, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return self.score(_global_max(f)).squeeze(1), self.map(f)


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 16, 7, 2, 3, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        self.stages = nn.Sequential(
            _Residual(16), _conv(16, 32, 2), _Residual(32), _conv(32, 64, 1), _Residual(64)
        )
        self.map = nn.Conv2d(64, 1, 1)
        self.score = nn.Linear(64, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.stages(self.stem(x))
        return self.score(_global_max(f)).squeeze(1), self.map(f)


class Proposed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.high_pass = _high_pass()
        self.stem = _conv(4, 12)
        self.down1 = _conv(12, 24, 2)
        self.down2 = nn.Sequential(_conv(24, 32, 2), _Residual(32))
        self.down3 = nn.Sequential(_conv(32, 64, 2), _Residual(64, dilation=2))
        self.lateral = nn.Conv2d(64, 32, 1)
        self.decode = nn.Sequential(_conv(32, 16), nn.Conv2d(16, 1, 1))
        self.score = nn.Linear(65, 1)

    def residuals(self, x: Tensor) -> Tensor:
        """The fixed filters in float32 even under bfloat16 autocast: the traces they extract
        (down to a 12- or 16-bit step) are finer than bfloat16's step just under 1.0 (2^-8),
        so they are taken before any rounding."""
        with torch.autocast("cpu", enabled=False):
            return self.high_pass(x.float())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f2 = self.down2(self.down1(self.stem(self.residuals(x))))
        f3 = self.down3(f2)
        up = functional.interpolate(self.lateral(f3), size=f2.shape[2:], mode="nearest")
        heat = self.decode(f2 + up)
        pooled = torch.cat([_global_max(f3), _global_max(heat)], dim=1)
        return self.score(pooled).squeeze(1), heat


class Deep(Proposed):
    """``proposed`` with a fourth stage at stride 16 (128 channels): a receptive field wide
    enough to compare a region with its surroundings, at a cost of about a third more compute."""

    def __init__(self) -> None:
        super().__init__()
        self.down4 = nn.Sequential(_conv(64, 128, 2), _Residual(128))
        self.lateral4 = nn.Conv2d(128, 32, 1)
        self.score = nn.Linear(129, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f2 = self.down2(self.down1(self.stem(self.residuals(x))))
        f3 = self.down3(f2)
        f4 = self.down4(f3)
        size = f2.shape[2:]
        up = functional.interpolate(self.lateral(f3), size=size, mode="nearest")
        up = up + functional.interpolate(self.lateral4(f4), size=size, mode="nearest")
        heat = self.decode(f2 + up)
        pooled = torch.cat([_global_max(f4), _global_max(heat)], dim=1)
        return self.score(pooled).squeeze(1), heat


class LogResidual(Proposed):
    """``proposed`` with a fifth fixed channel: the Laplacian of the log image. Speckle
    (ultrasound) and quantum noise grow with brightness; in the log domain multiplicative
    noise is additive, so a local edit stands out evenly in bright and dark regions."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv(5, 12)
        self.log_pass = nn.Conv2d(1, 1, 3, padding=1, bias=False, padding_mode="reflect")
        self.log_pass.weight.data.copy_(_high_pass().weight.data[1:2] / 8.0)  # the Laplacian
        self.log_pass.weight.requires_grad_(False)

    def residuals(self, x: Tensor) -> Tensor:
        """Both sets of fixed filters in float32, before any bfloat16 rounding."""
        with torch.autocast("cpu", enabled=False):
            x = x.float()
            log = torch.log(x + 1.0 / 64)  # 1/64: a floor under dark, noisy pixels
            return torch.cat([self.high_pass(x), self.log_pass(log)], dim=1)


def _residual_bank() -> Tensor:
    """Ten fixed 5×5 high-pass kernels, each summing to zero: first, second and third
    differences along rows, columns and both diagonals, the 3×3 and 5×5 "square" predictors
    (a pixel against its neighbours' weighted mean) and a Laplacian of a Gaussian. They
    predict a pixel from its neighbours, so what is left is noise and fine texture rather
    than anatomy."""
    k = torch.zeros(10, 1, 5, 5)
    k[0, 0, 2, 1:3] = torch.tensor([-1.0, 1.0])
    k[1, 0, 1:3, 2] = torch.tensor([-1.0, 1.0])
    k[2, 0, 2, 1:4] = torch.tensor([1.0, -2.0, 1.0])
    k[3, 0, 1:4, 2] = torch.tensor([1.0, -2.0, 1.0])
    k[4, 0, 1, 1], k[4, 0, 2, 2], k[4, 0, 3, 3] = 1.0, -2.0, 1.0
    k[5, 0, 1, 3], k[5, 0, 2, 2], k[5, 0, 3, 1] = 1.0, -2.0, 1.0
    k[6, 0, 2, 0:4] = torch.tensor([1.0, -3.0, 3.0, -1.0])
    k[7, 0, 1:4, 1:4] = torch.tensor([[-1.0, 2.0, -1.0], [2.0, -4.0, 2.0], [-1.0, 2.0, -1.0]])
    k[8, 0] = torch.tensor(
        [
            [-1.0, 2.0, -2.0, 2.0, -1.0],
            [2.0, -6.0, 8.0, -6.0, 2.0],
            [-2.0, 8.0, -12.0, 8.0, -2.0],
            [2.0, -6.0, 8.0, -6.0, 2.0],
            [-1.0, 2.0, -2.0, 2.0, -1.0],
        ]
    )
    grid = torch.arange(5.0) - 2
    rr = grid[:, None] ** 2 + grid[None, :] ** 2
    log = (rr - 2.0) * torch.exp(-rr / 2.0)
    k[9, 0] = log - log.mean()
    return k / k.abs().sum(dim=(1, 2, 3), keepdim=True)


class Residual(Proposed):
    """Fixed residual filters with per-image normalisation, and deep features taken relative
    to the same image.

    Each residual channel is divided by its own mean absolute value over the image's
    non-flat pixels, so a scanner's noise level and an image's contrast set the unit, then
    clipped at ±``CLIP`` of that unit (a strong anatomical edge counts no more than a few
    noise levels). The stride-8 features are instance-normalised before the image score: the
    score reads how far a place departs from the rest of its own image, not the image's
    overall texture."""

    CLIP = 6.0

    def __init__(self) -> None:
        super().__init__()
        self.bank = nn.Conv2d(1, 10, 5, padding=2, bias=False, padding_mode="reflect")
        self.bank.weight.data.copy_(_residual_bank())
        self.bank.weight.requires_grad_(False)
        self.stem = _conv(11, 16)
        self.down1 = _conv(16, 24, 2)
        self.relative = nn.InstanceNorm2d(64, affine=False)

    def residuals(self, x: Tensor) -> Tensor:
        """Normalised residuals (float32, before any bfloat16 rounding) and the plane's own
        local contrast (the plane minus its 9×9 mean, in the same per-image unit)."""
        with torch.autocast("cpu", enabled=False):
            x = x.float()
            r = self.bank(x)
            live = (r.abs() > 1e-6).float()
            scale = r.abs().sum(dim=(2, 3), keepdim=True) / (live.sum(dim=(2, 3), keepdim=True) + 1)
            r = torch.clamp(r / (scale + 1e-5), -self.CLIP, self.CLIP)
            local = x - functional.avg_pool2d(x, 9, stride=1, padding=4, count_include_pad=False)
            spread = local.abs().mean(dim=(2, 3), keepdim=True) + 1e-4
            return torch.cat([r, torch.clamp(local / spread, -self.CLIP, self.CLIP)], dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f2 = self.down2(self.down1(self.stem(self.residuals(x))))
        f3 = self.down3(f2)
        up = functional.interpolate(self.lateral(f3), size=f2.shape[2:], mode="nearest")
        heat = self.decode(f2 + up)
        pooled = torch.cat([_global_max(self.relative(f3)), _global_max(heat)], dim=1)
        return self.score(pooled).squeeze(1), heat


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "basic": Basic,
    "resnet": ResNet,
    "proposed": Proposed,
    "deep": Deep,
    "logres": LogResidual,
    "residual": Residual,
}
