"""Start training from an exported model: the weights of a ``proposed`` network read back
from its ONNX file.

The ONNX export folds each batch normalisation into the convolution before it, so the file
holds one weight and one bias per convolution, in the network's order. Read back, each
convolution gets the folded weight and its batch normalisation becomes the identity plus the
folded bias (scale 1, mean 0, variance 1 - eps); fine-tuning then keeps the normalisations
fixed (:func:`freeze_norms`), so the network starts exactly where the exported one was.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from scanseal.detect.training.nets import Proposed


def _pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Every (convolution, batch normalisation) pair of ``model``, in module order."""
    modules = list(model.modules())
    return [
        (a, b)
        for a, b in itertools.pairwise(modules)
        if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)
    ]


def proposed_from_onnx(path: Path) -> dict[str, Tensor]:
    """A ``proposed`` state dict equal, in evaluation, to the network in ONNX file ``path``."""
    graph = onnx.load(str(path)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    folded = [w for n, w in weights.items() if n.startswith("onnx::Conv")]
    model = Proposed()
    pairs = _pairs(model)
    if len(folded) != 2 * len(pairs):
        raise ValueError(f"{path}: {len(folded) // 2} folded convolutions, expected {len(pairs)}")
    with torch.no_grad():
        for (conv, norm), weight, bias in zip(pairs, folded[0::2], folded[1::2], strict=True):
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
        state: dict[str, Tensor] = model.state_dict()
        for name, value in weights.items():
            key = name.removeprefix("model.")
            if key in state and not name.startswith("onnx::"):
                state[key] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def freeze_norms(model: nn.Module) -> None:
    """Batch normalisations in evaluation mode with fixed parameters (fine-tuning in small
    batches keeps the starting network's statistics)."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
            for parameter in module.parameters():
                parameter.requires_grad_(False)
