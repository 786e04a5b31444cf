"""The small classifiers the notebooks train: multi-layer perceptrons on 64-pixel digit images."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise

import torch
from torch import nn

from batchlab.validation import (
    require_choice,
    require_float,
    require_int,
    require_module,
    require_seed,
    require_sequence,
)

__all__ = ["MAX_PARAMETERS", "count_parameters", "eval_mode", "make_mlp", "new_model", "require_classifier"]

MAX_PARAMETERS = 50_000_000  # make_mlp refuses more (200 MB of float32 weights, x3 or x4 while training)


def make_mlp(n_features: int = 64, n_classes: int = 10, hidden: Sequence[int] = (64,), dropout: float = 0.0,
             seed: int = 0, norm: str = "none") -> nn.Sequential:
    """A multi-layer perceptron ``n_features → hidden… → n_classes`` with ReLU (and optional dropout).

    ``norm`` adds a normalisation layer after each hidden linear layer: ``"batch"`` (``nn.BatchNorm1d``:
    statistics of the batch, so a sample's output depends on the other samples of its batch, and on ``B``),
    ``"layer"`` (``nn.LayerNorm``: statistics of each sample alone) or ``"none"``.

    Weights are drawn from a private generator seeded with ``seed``: the same arguments always build the
    same model, and the global random state is left untouched. The output is unnormalised logits of
    shape ``(batch, n_classes)``.

    Taught in: notebook 03 § The noise scale of a real network.
    """
    n_features = require_int("n_features", n_features, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=2)
    widths = [require_int(f"hidden[{i}]", w, minimum=1)
              for i, w in enumerate(require_sequence("hidden", hidden, "layer widths", nonempty=False))]
    dropout = require_float("dropout", dropout, minimum=0.0, maximum=0.95)
    seed = require_seed("seed", seed)
    norm = require_choice("norm", norm, ("none", "batch", "layer"))
    sizes = [n_features, *widths, n_classes]
    parameters = sum((fan_in + 1) * fan_out for fan_in, fan_out in pairwise(sizes))
    parameters += 0 if norm == "none" else 2 * sum(widths)
    if parameters > MAX_PARAMETERS:
        raise ValueError(f"make_mlp(n_features={n_features}, hidden={tuple(widths)}, n_classes={n_classes}) "
                         f"would have {parameters:,} parameters ({4 * parameters / 1e9:.3g} GB of float32 "
                         f"weights), more than MAX_PARAMETERS = {MAX_PARAMETERS:,}: use narrower layers")

    # The layers draw their initial weights when they are constructed, so they are built inside the
    # forked, seeded random state (building only the Sequential there would leave the weights to the
    # global state). Only the CPU generator is seeded (construction happens on the CPU); torch.manual_seed
    # would also queue seeding calls for every accelerator backend, which costs milliseconds per model.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        layers: list[nn.Module] = []
        for width_in, width in zip([n_features, *widths], widths, strict=False):
            layers.append(nn.Linear(width_in, width))
            if norm != "none":
                layers.append({"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[norm](width))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        return nn.Sequential(*layers, nn.Linear([n_features, *widths][-1], n_classes))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (scalars) of ``model``."""
    return sum(p.numel() for p in require_module("model", model).parameters() if p.requires_grad)


def require_classifier(model: nn.Module, sample: torch.Tensor, n_classes: int) -> nn.Module:
    """Return ``model`` if it has trainable parameters and maps ``sample`` (one sample, shape
    ``(1, features)``, on the model's device) to ``n_classes`` logits; raise ``ValueError`` saying what
    is wrong otherwise (instead of PyTorch's "empty parameter list" or "shapes cannot be multiplied").
    Runs the sample in eval mode, without gradients."""
    require_module("model", model)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model must have trainable parameters (an optimizer needs something to update), "
                         f"got a {type(model).__name__} with none")
    features = sample.shape[-1]
    with eval_mode(model), torch.no_grad():
        try:
            shape = tuple(model(sample).shape)
        except RuntimeError as error:  # e.g. mat1 and mat2 shapes cannot be multiplied
            raise ValueError(f"model must take samples with {features} features (the data's), but one "
                             f"sample through it failed: {error}") from None
    if shape != (1, n_classes):
        raise ValueError(f"model must map a batch of samples with {features} features to {n_classes} logits "
                         f"each (one per class), got output shape {shape} for a batch of 1")
    return model


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` dropout off and batch norm on its running statistics inside; the model's
    previous mode restored afterwards, even when interrupted.

    Taught in: notebook 05 § The same loop through batchlab.training.train.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def new_model(model_factory: Callable[[], nn.Module], device: torch.device | None = None) -> nn.Module:
    """Call ``model_factory`` (a function that builds a new model, e.g. :func:`make_mlp`), check that it
    gave a ``torch.nn.Module`` and move it to ``device`` (unless None)."""
    if not callable(model_factory) or isinstance(model_factory, nn.Module):
        raise TypeError("model_factory must be a function that returns a new model (e.g. make_mlp), "
                        f"got {type(model_factory).__name__}")
    model = model_factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return a torch.nn.Module, got {type(model).__name__}")
    return model if device is None else model.to(device)
