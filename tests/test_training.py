"""The training engine (batchlab.training) against independent references.

* counting against :mod:`batchlab.arithmetic`;
* every update against a hand-written loop with ``torch.optim`` over the same batches (bit for bit for
  plain SGD), per-epoch losses against per-sample losses computed there;
* gradient accumulation against one big batch per group (and the reference material's version, which
  must differ when the last group is short);
* stopping, callbacks, progress bars, argument checks, and the absence of host-device syncs per
  iteration (counted by patching the tensor methods that read values back).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from batchlab import arithmetic
from batchlab.data import BatchIterator, load_digits_split, to_tensors
from batchlab.models import make_mlp
from batchlab.training import (
    Callback,
    History,
    TrainingState,
    Updater,
    _mode_matters,
    evaluate,
    make_optimizer,
    train,
)

SPLIT = load_digits_split()


def run(n_train: int = 100, **kwargs) -> History:
    kwargs.setdefault("progress", False)
    kwargs.setdefault("device", "cpu")
    return train(make_mlp(), SPLIT.take(n_train), **kwargs)


def reference_batches(n_train: int, batch_size: int, epochs: int, drop_last: bool = False, seed: int = 0):
    """The batches ``train`` sees, epoch by epoch, drawn by an independent iterator with the same seed."""
    x, y, _, _ = to_tensors(SPLIT.take(n_train), "cpu")
    batches = BatchIterator(x, y, batch_size, drop_last=drop_last, seed=seed)
    return [[(xb.clone(), yb.clone()) for xb, yb in batches] for _ in range(epochs)]


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# --- counting --------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(
    n=st.integers(1, 60),
    b=st.integers(1, 70),
    epochs=st.integers(0, 3),
    drop_last=st.booleans(),
    accumulation=st.integers(1, 4),
)
def test_counts_match_the_arithmetic(n, b, epochs, drop_last, accumulation):
    if drop_last and b > n:
        return  # rejected: see test_bad_arguments
    history = run(n, batch_size=b, epochs=epochs, drop_last=drop_last, accumulation_steps=accumulation)
    i = arithmetic.iterations_per_epoch(n, b, drop_last)
    steps = arithmetic.total_steps(n, b, epochs, drop_last, accumulation)
    assert history.steps == steps == history.planned_steps
    assert history.iterations == i * epochs == history.plan.total_iterations
    assert history.samples_seen == arithmetic.samples_seen(n, b, epochs, drop_last)
    assert len(history.iteration_losses) == len(history.iteration_sizes) == history.iterations
    assert sum(history.iteration_sizes) == history.samples_seen
    assert history.epoch_starts == [e * i for e in range(epochs)]
    assert len(history.learning_rates) == history.steps
    assert history.epochs_completed == epochs
    assert len(history.train_loss) == len(history.val_loss) == len(history.train_accuracy) == epochs
    assert history.epoch_end_steps == [(e + 1) * steps // max(epochs, 1) for e in range(epochs)]
    assert not history.stopped


def test_sanity_check_iterations_times_epochs():
    history = run(1000, batch_size=32, epochs=3)
    assert history.iterations == 32 * 3 == arithmetic.total_steps(1000, 32, 3)
    assert history.iteration_sizes[:32] == [32] * 31 + [1000 - 31 * 32]


# --- the updates and the averages, against a hand-written torch loop --------------------------------


def reference_run(n_train, batch_size, epochs, lr_at, optimizer="sgd", weight_decay=0.0, drop_last=False):
    """A plain PyTorch loop over the same batches; per-epoch loss from per-sample losses (sum / N)."""
    model = make_mlp()
    opt = {
        "sgd": lambda: torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=weight_decay),
        "momentum": lambda: torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9,
                                            weight_decay=weight_decay),
        "adam": lambda: torch.optim.Adam(model.parameters(), lr=1.0, weight_decay=weight_decay),
    }[optimizer]()
    epoch_losses, epoch_accuracies, step = [], [], 0
    for batches in reference_batches(n_train, batch_size, epochs, drop_last):
        loss_total, correct, n = 0.0, 0, 0
        for xb, yb in batches:
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.zero_grad()
            logits = model(xb)
            F.cross_entropy(logits, yb).backward()  # the standard loop
            opt.step()
            step += 1
            with torch.no_grad():  # the per-sample losses of this batch, as it was trained
                loss_total += F.cross_entropy(logits, yb, reduction="sum").item()
                correct += (logits.argmax(1) == yb).sum().item()
            n += len(yb)
        epoch_losses.append(loss_total / n)
        epoch_accuracies.append(correct / n)
    return model, epoch_losses, epoch_accuracies


@pytest.mark.parametrize(
    ("n_train", "batch_size", "kwargs"),
    [
        (100, 32, {}),
        (100, 32, {"drop_last": True}),
        (90, 9, {"weight_decay": 1e-3}),
        (120, 16, {"warmup_steps": 12, "scaling_rule": "linear", "base_batch_size": 8}),
        (120, 16, {"warmup_steps": 5, "scaling_rule": "sqrt", "base_batch_size": 64}),
    ],
)
def test_plain_sgd_is_torch_sgd_bit_for_bit(n_train, batch_size, kwargs):
    model = make_mlp()
    history = train(model, SPLIT.take(n_train), batch_size=batch_size, epochs=3, lr=0.2, progress=False,
                    device="cpu", **kwargs)
    rule = kwargs.get("scaling_rule", "none")
    peak = arithmetic.scaled_learning_rate(0.2, kwargs.get("base_batch_size", 1), batch_size, rule)
    warmup = kwargs.get("warmup_steps", 0)
    expected_rates = [arithmetic.warmup_learning_rate(s, peak, warmup) for s in range(history.steps)]
    assert history.learning_rates == expected_rates
    reference, losses, accuracies = reference_run(
        n_train, batch_size, 3, lambda s: expected_rates[s], weight_decay=kwargs.get("weight_decay", 0.0),
        drop_last=kwargs.get("drop_last", False),
    )
    assert torch.equal(flat(model), flat(reference))
    assert history.train_loss == pytest.approx(losses, rel=1e-6)
    assert history.train_accuracy == accuracies


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_momentum_and_adam_match_torch_optim(optimizer):
    lr = 0.05 if optimizer == "momentum" else 0.003
    model = make_mlp()
    history = train(model, SPLIT.take(100), batch_size=16, epochs=2, lr=lr, optimizer=optimizer,
                    progress=False, device="cpu")
    reference, losses, _ = reference_run(100, 16, 2, lambda s: lr, optimizer=optimizer)
    torch.testing.assert_close(flat(model), flat(reference), rtol=1e-5, atol=1e-6)
    assert history.train_loss == pytest.approx(losses, rel=1e-5)


def test_epoch_loss_is_the_per_sample_mean_not_the_mean_of_batch_means():
    history = run(100, batch_size=32, epochs=2)  # batches of 32, 32, 32 and 4
    for epoch, start in enumerate(history.epoch_starts):
        losses = history.iteration_losses[start : start + 4]
        sizes = history.iteration_sizes[start : start + 4]
        assert sizes == [32, 32, 32, 4]
        per_sample_mean = math.fsum(m * b for m, b in zip(losses, sizes, strict=True)) / 100
        mean_of_batch_means = sum(losses) / 4
        assert history.train_loss[epoch] == pytest.approx(per_sample_mean, rel=1e-12)
        assert abs(mean_of_batch_means - per_sample_mean) > 1e-4  # the biased average is visibly off


def test_iteration_losses_are_batch_means():
    model = make_mlp()
    history = train(model, SPLIT.take(50), batch_size=20, epochs=1, lr=1e-9, progress=False, device="cpu")
    (batches,) = reference_batches(50, 20, 1)
    # With a negligible learning rate the model barely moves: the recorded losses are the batches' means.
    expected = [F.cross_entropy(make_mlp()(xb), yb).item() for xb, yb in batches]
    assert history.iteration_losses == pytest.approx(expected, rel=1e-6)


# --- gradient accumulation -------------------------------------------------------------------------


def accumulation_references(n_train, batch_size, accumulation, lr):
    """Parameters after one epoch: one big batch per group (exact), and the reference material's way."""
    (batches,) = reference_batches(n_train, batch_size, 1)
    groups = [batches[i : i + accumulation] for i in range(0, len(batches), accumulation)]
    exact, naive = make_mlp(), make_mlp()
    exact_opt = torch.optim.SGD(exact.parameters(), lr=lr)
    naive_opt = torch.optim.SGD(naive.parameters(), lr=lr)
    for group in groups:
        xb = torch.cat([x for x, _ in group])
        yb = torch.cat([y for _, y in group])
        exact_opt.zero_grad()
        F.cross_entropy(exact(xb), yb).backward()  # one big batch: the mean over the group's samples
        exact_opt.step()
        naive_opt.zero_grad()
        for x, y in group:  # each batch's mean loss divided by the full accumulation count
            (F.cross_entropy(naive(x), y) / accumulation).backward()
        naive_opt.step()
    return flat(exact), flat(naive), [sum(len(y) for _, y in group) for group in groups]


@pytest.mark.parametrize(
    ("n_train", "batch_size", "accumulation"),
    [(70, 16, 3), (100, 7, 4), (50, 10, 5), (33, 4, 2)],
)
def test_accumulation_equals_one_big_batch_per_group(n_train, batch_size, accumulation):
    model = make_mlp()
    history = train(model, SPLIT.take(n_train), batch_size=batch_size, epochs=1, lr=0.5,
                    accumulation_steps=accumulation, progress=False, device="cpu")
    exact, naive, group_sizes = accumulation_references(n_train, batch_size, accumulation, 0.5)
    assert history.steps == len(group_sizes)
    torch.testing.assert_close(flat(model), exact, rtol=1e-5, atol=1e-6)
    if group_sizes[-1] < batch_size * accumulation:  # a short last group: the naive version is off
        assert (naive - exact).abs().max() > 1e-4
    else:
        torch.testing.assert_close(naive, exact, rtol=1e-5, atol=1e-6)


def test_accumulation_with_a_short_last_batch_inside_a_full_group():
    # 70 samples, B = 16, A = 5: a single group of 16+16+16+16+6 = 70 samples, i.e. plain batch GD.
    model = make_mlp()
    train(model, SPLIT.take(70), batch_size=16, epochs=1, lr=0.5, accumulation_steps=5, progress=False,
          device="cpu")
    exact, naive, group_sizes = accumulation_references(70, 16, 5, 0.5)
    assert group_sizes == [70]
    torch.testing.assert_close(flat(model), exact, rtol=1e-5, atol=1e-6)
    assert (naive - exact).abs().max() > 1e-4


# --- callbacks and stopping ------------------------------------------------------------------------


class Recorder(Callback):
    def __init__(self, stop_at: int | None = None, hook: str = "iteration"):
        self.stop_at, self.hook = stop_at, hook
        self.calls = {"start": 0, "iteration": 0, "epoch": 0, "end": 0}
        self.seen: list[tuple[int, int, int, int]] = []
        self.pending: list[list[float]] = []
        self.indices: list[list[int]] = []

    def on_train_start(self, state):
        self.calls["start"] += 1
        assert state.batch_indices is None

    def on_iteration_end(self, state):
        self.calls["iteration"] += 1
        self.seen.append((state.epoch, state.iteration_in_epoch, state.global_iteration, state.step))
        self.pending.append(state.pending_losses())
        self.indices.append(state.batch_indices.tolist())
        if self.hook == "iteration" and state.global_iteration == self.stop_at:
            state.request_stop()

    def on_epoch_end(self, state):
        self.calls["epoch"] += 1
        if self.hook == "epoch" and state.epoch == self.stop_at:
            state.request_stop()

    def on_train_end(self, state):
        self.calls["end"] += 1


def test_callbacks_see_every_iteration_and_consistent_state():
    recorder = Recorder()
    history = run(45, batch_size=10, epochs=2, accumulation_steps=2, callbacks=[recorder])
    assert recorder.calls == {"start": 1, "iteration": 10, "epoch": 2, "end": 1}
    steps = [0, 1, 1, 2, 3]  # 5 batches, groups of 2: updates after batches 1, 3 and 4 of each epoch
    expected = [(e, k, 5 * e + k, steps[k] + 3 * e) for e in range(2) for k in range(5)]
    assert recorder.seen == expected
    # pending_losses: the epoch's losses so far, equal to what ends up in the history.
    for g, pending in enumerate(recorder.pending):
        start = history.epoch_starts[g // 5]
        assert pending == pytest.approx(history.iteration_losses[start : g + 1], rel=1e-12)
    # batch_indices: the samples of the batch just trained, as an independent iterator draws them.
    x, y, _, _ = to_tensors(SPLIT.take(45), "cpu")
    batches = BatchIterator(x, y, 10, seed=0)
    expected_indices = [batches.batch_indices(k).tolist() for _ in range(2) for k, _ in enumerate(batches)]
    assert recorder.indices == expected_indices
    assert [len(i) for i in recorder.indices] == [10, 10, 10, 10, 5] * 2


@pytest.mark.parametrize("accumulation", [1, 2, 3])
def test_stop_mid_epoch_keeps_a_consistent_history(accumulation):
    recorder = Recorder(stop_at=7)  # 100 samples, B = 20: epoch 1, iteration 2
    model = make_mlp()
    history = train(model, SPLIT.take(100), batch_size=20, epochs=5, accumulation_steps=accumulation,
                    callbacks=[recorder], progress=False, device="cpu")
    assert history.stopped
    assert history.iterations == 8 == len(history.iteration_losses) == len(history.iteration_sizes)
    assert history.samples_seen == sum(history.iteration_sizes) == 160
    complete_groups = math.ceil(5 / accumulation) + 3 // accumulation  # epoch 0, then 3 batches of epoch 1
    assert history.steps == complete_groups == len(history.learning_rates)
    assert history.epochs_completed == 1 == len(history.train_loss) == len(history.val_loss)
    assert history.epoch_starts == [0, 5]
    assert recorder.calls == {"start": 1, "iteration": 8, "epoch": 1, "end": 1}
    assert all(p.grad is None for p in model.parameters())  # an unfinished group is discarded
    assert all(math.isfinite(v) for v in history.iteration_losses)


def test_stop_at_an_epoch_end_completes_that_epoch():
    recorder = Recorder(stop_at=1, hook="epoch")
    history = run(100, batch_size=20, epochs=5, callbacks=[recorder])
    assert history.stopped and history.epochs_completed == 2 and history.iterations == 10
    assert recorder.calls["epoch"] == 2


def test_stop_on_the_last_iteration_of_an_epoch_still_records_the_epoch():
    history = run(100, batch_size=20, epochs=3, callbacks=[Recorder(stop_at=4)])
    assert history.stopped and history.epochs_completed == 1 and history.iterations == 5
    assert len(history.train_loss) == 1


def test_stop_requested_on_the_final_iteration_is_not_early():
    history = run(100, batch_size=20, epochs=2, callbacks=[Recorder(stop_at=9)])
    assert not history.stopped and history.epochs_completed == 2


def test_stop_before_the_first_iteration():
    class StopAtStart(Callback):
        def on_train_start(self, state):
            state.request_stop()

    history = run(100, batch_size=20, epochs=2, callbacks=[StopAtStart()])
    assert history.stopped and history.iterations == 0 and history.iteration_losses == []


def test_keyboard_interrupt_stops_cleanly():
    class Interrupt(Callback):
        def on_iteration_end(self, state):
            if state.global_iteration == 6:
                raise KeyboardInterrupt

    history = run(100, batch_size=20, epochs=3, callbacks=[Interrupt()])
    assert history.stopped
    assert history.iterations == 7 == len(history.iteration_losses) == len(history.iteration_sizes)
    assert history.epochs_completed == 1 and history.steps == 7


def test_base_callback_hooks_do_nothing():
    history = run(40, batch_size=10, epochs=1, callbacks=[Callback()])
    assert history.iterations == 4


def test_training_state_batch_indices_and_pending_losses_before_training():
    x, y, _, _ = to_tensors(SPLIT.take(10), "cpu")
    state = TrainingState(make_mlp(), History(plan=arithmetic.TrainingPlan(10, 5, 1)), BatchIterator(x, y, 5))
    assert state.batch_indices is None and state.pending_losses() == []


# --- progress bars, reproducibility, evaluation ----------------------------------------------------


def test_progress_false_shows_no_bar(capsys):
    run(40, batch_size=10, epochs=2, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    run(40, batch_size=10, epochs=2, progress=True)
    assert "epochs" in capsys.readouterr().err  # the check can fail: bars do show when asked


def test_same_seed_same_run_other_seed_other_run():
    first, second, other = run(60, batch_size=8, epochs=2), run(60, batch_size=8, epochs=2), \
        run(60, batch_size=8, epochs=2, seed=1)
    assert first.iteration_losses == second.iteration_losses and first.val_loss == second.val_loss
    assert first.iteration_losses != other.iteration_losses


def test_dropout_is_seeded_too():
    def go(seed):
        return train(make_mlp(dropout=0.3), SPLIT.take(60), batch_size=8, epochs=1, seed=seed,
                     progress=False, device="cpu").iteration_losses

    assert go(0) == go(0) != go(1)


def test_training_learns_the_digits():
    history = run(1347, batch_size=32, epochs=4, lr=0.3)
    assert history.val_accuracy[-1] > 0.85 > 0.1  # chance is 0.1
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.best_epoch == min(range(4), key=history.val_loss.__getitem__)
    assert history.wall_time_s > 0


def test_evaluate_matches_a_direct_computation_and_restores_the_mode():
    model = make_mlp(dropout=0.5)
    _, _, x, y = to_tensors(SPLIT, "cpu")
    model.train()
    loss, accuracy = evaluate(model, x, y, batch_size=100)
    assert model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert accuracy == (logits.argmax(1) == y).sum().item() / len(y)
    with pytest.raises(TypeError, match="model"):
        evaluate("model", x, y)
    with pytest.raises(ValueError, match="same, non-zero number"):
        evaluate(model, x, y[:3])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(model, x, y, batch_size=0)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_per_epoch_validation_is_an_eval_mode_evaluation(dropout):
    # With dropout on, the validation numbers would be random draws and not equal these.
    model = make_mlp(dropout=dropout)
    split = SPLIT.take(200)
    history = train(model, split, batch_size=32, epochs=2, progress=False, device="cpu")
    assert model.training  # the validation pass puts it back in training mode
    _, _, x_val, y_val = to_tensors(split, "cpu")
    loss, accuracy = evaluate(model, x_val, y_val)
    assert history.val_loss[-1] == pytest.approx(loss, rel=1e-6)
    assert history.val_accuracy[-1] == accuracy


def test_the_mode_switch_is_skipped_only_for_models_it_cannot_change():
    class Custom(torch.nn.Linear):  # a subclass may read self.training in its forward
        pass

    assert not _mode_matters(make_mlp())
    assert _mode_matters(make_mlp(dropout=0.1))
    assert _mode_matters(torch.nn.Sequential(torch.nn.Linear(64, 10), torch.nn.BatchNorm1d(10)))
    assert _mode_matters(torch.nn.Sequential(Custom(64, 10)))


def test_make_optimizer_and_updater():
    model = make_mlp()
    sgd = make_optimizer("sgd", model.parameters(), 0.1)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0
    momentum = make_optimizer("momentum", model.parameters(), 0.1, weight_decay=1e-4)
    assert momentum.param_groups[0]["momentum"] == 0.9 and momentum.param_groups[0]["weight_decay"] == 1e-4
    assert isinstance(make_optimizer("adam", model.parameters(), 1e-3), torch.optim.Adam)
    with pytest.raises(ValueError, match="optimizer must be one of 'sgd', 'momentum', 'adam'"):
        make_optimizer("rmsprop", model.parameters(), 0.1)
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("sgd", model.parameters(), 0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        make_optimizer("sgd", model.parameters(), 0.1, weight_decay=-1.0)
    with pytest.raises(TypeError, match="optimizer"):
        Updater("sgd")


def test_updater_clears_gradients_and_sets_the_rate():
    model = make_mlp()
    update = Updater(make_optimizer("momentum", model.parameters(), 0.1))
    F.cross_entropy(model(torch.rand(4, 64)), torch.tensor([0, 1, 2, 3])).backward()
    before = flat(model)
    update(0.05)
    assert all(p.grad is None for p in model.parameters())
    assert update.optimizer.param_groups[0]["lr"] == 0.05
    assert not torch.equal(before, flat(model))


# --- no host-device synchronisation inside the loop ------------------------------------------------


READBACKS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


@pytest.fixture
def readback_counter(monkeypatch):
    """Count every Python-level read of a tensor's values back to the host during the test."""
    counts = {"n": 0}
    for name in READBACKS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            counts["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


def test_readbacks_do_not_grow_with_the_number_of_iterations(readback_counter):
    per_run = {}
    for batch_size in (64, 2):  # 2 and 64 iterations per epoch
        readback_counter["n"] = 0
        history = run(128, batch_size=batch_size, epochs=2, accumulation_steps=2)
        per_run[batch_size] = readback_counter["n"]
        assert history.iterations == 2 * 128 // batch_size
    assert per_run[2] == per_run[64]
    assert per_run[2] <= 2 * 2  # at most two reads per epoch


def test_the_readback_counter_can_fail(readback_counter):
    class ReadEveryIteration(Callback):
        def on_iteration_end(self, state):
            state.pending_losses()

    run(128, batch_size=64, epochs=1, callbacks=[ReadEveryIteration()])
    few = readback_counter["n"]
    readback_counter["n"] = 0
    run(128, batch_size=2, epochs=1, callbacks=[ReadEveryIteration()])
    assert readback_counter["n"] > few + 50


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_no_synchronising_cuda_call_inside_the_loop(monkeypatch):
    """Between the start of an epoch and its end, any synchronising CUDA call raises an error."""
    import batchlab.training as training

    class SyncGuard(Callback):
        def on_train_start(self, state):
            torch.cuda.set_sync_debug_mode("error")

        def on_epoch_end(self, state):
            torch.cuda.set_sync_debug_mode("error")

    finish = training._finish_epoch

    def finish_allowed_to_sync(*args):  # the one read per epoch
        torch.cuda.set_sync_debug_mode("default")
        finish(*args)

    monkeypatch.setattr(training, "_finish_epoch", finish_allowed_to_sync)
    try:
        history = train(make_mlp(), SPLIT, batch_size=32, epochs=2, accumulation_steps=2, device="cuda",
                        progress=False, callbacks=[SyncGuard()])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert history.epochs_completed == 2


# --- bad arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": -3}, ValueError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"batch_size": 8.0}, TypeError, "batch_size"),
        ({"batch_size": 101, "drop_last": True}, ValueError, "batch_size must be <= the 100 training"),
        ({"epochs": -1}, ValueError, "epochs"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay"),
        ({"drop_last": 1}, TypeError, "drop_last"),
        ({"accumulation_steps": 0}, ValueError, "accumulation_steps"),
        ({"scaling_rule": "cubic"}, ValueError, "scaling_rule"),
        ({"scaling_rule": "linear"}, ValueError, "needs base_batch_size"),
        ({"scaling_rule": "sqrt", "base_batch_size": 0}, ValueError, "base_batch_size"),
        ({"warmup_steps": -1}, ValueError, "warmup_steps"),
        ({"seed": -1}, ValueError, "seed"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"callbacks": [object()]}, TypeError, "callbacks must hold batchlab.training.Callback"),
        ({"callbacks": Callback()}, TypeError, r"callbacks must be a sequence .* \(e\.g\. \[callback\]\)"),
        ({"callbacks": 3}, TypeError, "callbacks"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"refresh_every": 0}, ValueError, "refresh_every"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, error, pattern):
    arguments = {"batch_size": 10, "epochs": 1, "progress": False, "device": "cpu", **kwargs}
    with pytest.raises(error, match=pattern):
        train(make_mlp(), SPLIT.take(100), **arguments)


def test_bad_model_and_data():
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        train(lambda x: x, SPLIT, batch_size=10, epochs=1)
    with pytest.raises(TypeError, match=r"data must be a batchlab\.data\.DigitsSplit"):
        train(make_mlp(), (SPLIT.x_train, SPLIT.y_train), batch_size=10, epochs=1)
