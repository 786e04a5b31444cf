"""The classifiers (batchlab.models): seeded construction, layers, and argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from batchlab.models import MAX_PARAMETERS, count_parameters, make_mlp, require_classifier


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_same_seed_builds_the_same_model_whatever_the_global_state():
    first = make_mlp(seed=3)
    torch.rand(100)  # move the global random state on
    second = make_mlp(seed=3)
    assert same_weights(first, second)
    assert not same_weights(first, make_mlp(seed=4))


def test_construction_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    make_mlp(seed=7)
    assert torch.equal(torch.rand(5), expected)


def test_layers_shapes_and_parameter_count():
    model = make_mlp(n_features=64, n_classes=10, hidden=(32, 16))
    linear = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 32), (32, 16), (16, 10)]
    assert sum(isinstance(m, nn.ReLU) for m in model) == 2
    assert model(torch.zeros(7, 64)).shape == (7, 10)
    assert count_parameters(model) == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert count_parameters(make_mlp(hidden=())) == 64 * 10 + 10  # no hidden layer: logistic regression


def test_dropout_only_when_asked():
    assert not any(isinstance(m, nn.Dropout) for m in make_mlp())
    dropouts = [m for m in make_mlp(hidden=(32, 32), dropout=0.25) if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 2 and all(m.p == 0.25 for m in dropouts)


@pytest.mark.parametrize(("norm", "layer"), [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_a_norm_layer_after_each_hidden_layer(norm, layer):
    model = make_mlp(hidden=(32, 16), norm=norm)
    assert [type(m) for m in model] == [nn.Linear, layer, nn.ReLU, nn.Linear, layer, nn.ReLU, nn.Linear]
    assert [m.normalized_shape[0] if norm == "layer" else m.num_features
            for m in model if isinstance(m, layer)] == [32, 16]


def test_dropout_does_not_change_the_initial_weights():
    assert same_weights(make_mlp(seed=1), make_mlp(seed=1, dropout=0.5))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_features": 0}, ValueError, "n_features"),
        ({"n_features": 6.0}, TypeError, "n_features"),
        ({"n_classes": 1}, ValueError, "n_classes"),
        ({"hidden": 64}, TypeError, "hidden"),
        ({"hidden": "64"}, TypeError, "hidden"),
        ({"hidden": (64, 0)}, ValueError, r"hidden\[1\]"),
        ({"hidden": (True,)}, TypeError, r"hidden\[0\]"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"dropout": -0.1}, ValueError, "dropout"),
        ({"dropout": "0.5"}, TypeError, "dropout"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"seed": 2**64}, ValueError, "seed must be an integer >= 0 and <= 18446744073709551615"),
        ({"norm": "group"}, ValueError, "norm must be one of 'none', 'batch', 'layer'"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=name):
        make_mlp(**kwargs)


def test_count_parameters_needs_a_module():
    with pytest.raises(TypeError, match="model"):
        count_parameters([torch.zeros(3)])


def test_a_model_too_large_is_refused_before_any_allocation():
    """hidden=(10**8,) would allocate 30 GB: refused at once, in words."""
    with pytest.raises(ValueError, match=r"would have 7,500,000,010 parameters \(30 GB .*MAX_PARAMETERS"):
        make_mlp(hidden=(10**8,))
    with pytest.raises(ValueError, match="MAX_PARAMETERS"):
        make_mlp(n_features=10**12, hidden=())
    assert count_parameters(make_mlp(hidden=(4096, 4096))) < MAX_PARAMETERS  # large, still allowed


def test_require_classifier_names_what_is_wrong():
    sample = torch.zeros(1, 64)
    model = make_mlp()
    assert require_classifier(model, sample, 10) is model
    with pytest.raises(ValueError, match=r"model must take samples with 64 features .* failed: mat1 and"):
        require_classifier(make_mlp(n_features=8), sample, 10)
    with pytest.raises(ValueError, match=r"got output shape \(1, 3\)"):
        require_classifier(make_mlp(n_classes=3), sample, 10)
    with pytest.raises(ValueError, match="model must have trainable parameters"):
        require_classifier(nn.ReLU(), sample, 10)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        require_classifier("mlp", sample, 10)
