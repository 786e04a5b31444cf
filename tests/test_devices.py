"""Device choice (batchlab.devices): cuda, then mps, then cpu; clear errors for unavailable devices."""

from __future__ import annotations

import pytest
import torch

from batchlab import devices


@pytest.fixture
def availability(monkeypatch):
    """Pretend which accelerators exist: ``availability(cuda=..., mps=...)``."""

    def set_available(*, cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return set_available


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_default_order_is_cuda_then_mps_then_cpu(availability, cuda, mps, expected):
    availability(cuda=cuda, mps=mps)
    assert devices.default_device() == torch.device(expected)
    assert devices.resolve_device(None) == torch.device(expected)


def test_resolve_accepts_names_and_devices(availability):
    availability(cuda=False, mps=False)
    assert devices.resolve_device("cpu") == torch.device("cpu")
    assert devices.resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(("name", "message"), [("cuda", "no CUDA GPU"), ("cuda:0", "no CUDA GPU"),
                                               ("mps", "MPS is not available")])
def test_unavailable_accelerators_are_clear_errors(availability, name, message):
    availability(cuda=False, mps=False)
    with pytest.raises(ValueError, match=message):
        devices.resolve_device(name)


@pytest.mark.parametrize("name", ["tpu", "gpu", "", "xla"])
def test_unknown_device_names_are_value_errors(name):
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'mps'"):
        devices.resolve_device(name)


@pytest.mark.parametrize("value", [0, 1.5, ["cpu"], True])
def test_other_types_are_type_errors(value):
    with pytest.raises(TypeError, match=r"device must be a str, torch\.device or None"):
        devices.resolve_device(value)


def test_describe_device(availability, monkeypatch):
    availability(cuda=False, mps=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert devices.describe_device("cpu") == "cpu (2 threads)"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert devices.describe_device("cpu") == "cpu (1 thread)"
    availability(cuda=True, mps=False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA Test GPU")
    assert devices.describe_device() == "cuda (NVIDIA Test GPU)"
