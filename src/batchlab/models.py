"""The small classifiers the notebooks train: multi-layer perceptrons on 64-pixel digit images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from batchlab.validation import require_choice, require_float, require_int

__all__ = ["count_parameters", "make_mlp"]


def make_mlp(
    n_features: int = 64,
    n_classes: int = 10,
    hidden: Sequence[int] = (64,),
    dropout: float = 0.0,
    seed: int = 0,
    norm: str = "none",
) -> nn.Sequential:
    """A multi-layer perceptron ``n_features → hidden… → n_classes`` with ReLU (and optional dropout).

    ``norm`` adds a normalisation layer after each hidden linear layer: ``"batch"``
    (``nn.BatchNorm1d``: statistics of the batch, so a sample's output depends on the other samples of
    its batch, and on ``B``), ``"layer"`` (``nn.LayerNorm``: statistics of each sample alone) or
    ``"none"``.

    Weights are drawn from a private generator seeded with ``seed``: the same arguments always build the
    same model, and the global random state is left untouched. The output is unnormalised logits of
    shape ``(batch, n_classes)``.
    """
    n_features = require_int("n_features", n_features, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=2)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(f"hidden must be a sequence of layer widths, got {type(hidden).__name__}")
    widths = [require_int(f"hidden[{i}]", w, minimum=1) for i, w in enumerate(hidden)]
    dropout = require_float("dropout", dropout, minimum=0.0, maximum=0.95)
    seed = require_int("seed", seed, minimum=0, maximum=2**64 - 1)  # a torch.Generator seed
    norm = require_choice("norm", norm, ("none", "batch", "layer"))
    norms = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}

    # The layers draw their initial weights when they are constructed, so they are built inside the
    # forked, seeded random state (building only the Sequential there would leave the weights to the
    # global state).
    # Only the CPU generator is seeded (construction happens on the CPU); torch.manual_seed would also
    # queue seeding calls for every accelerator backend, which costs milliseconds per model.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        layers: list[nn.Module] = []
        width_in = n_features
        for width in widths:
            layers.append(nn.Linear(width_in, width))
            if norm != "none":
                layers.append(norms[norm](width))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width_in = width
        layers.append(nn.Linear(width_in, n_classes))
        model = nn.Sequential(*layers)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (scalars) of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
