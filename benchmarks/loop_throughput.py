"""Loop throughput: a standard DataLoader loop, batchlab's engine, and the bare-step floor.

Usage::

    .venv/bin/python benchmarks/loop_throughput.py                # default device (cuda, mps, cpu)
    .venv/bin/python benchmarks/loop_throughput.py --device cpu --rounds 31 --threads 0
    .venv/bin/python benchmarks/loop_throughput.py --optimizer adam --batch-sizes 32

For each batch size B (default 8, 32, 128, 512), on one model (``make_mlp()``: 64-64-10), the digits
training set (1,347 samples) and one device, it measures samples per second of

(a) the standard loop: ``DataLoader(TensorDataset(x, y), batch_size=B, shuffle=True)``, batches moved
    to the device, ``optimizer.step()`` of ``torch.optim.SGD`` or ``torch.optim.Adam`` built with
    PyTorch's defaults, ``loss.item()`` every iteration, a validation pass per epoch
    (:func:`batchlab.measure.throughput.dataloader_loop_throughput`);
(b) ``batchlab.training.train`` (:func:`batchlab.measure.throughput.engine_throughput`), validation
    per epoch included;
(c) the floor: forward, loss, backward and the engine's update on one pre-made batch, nothing else
    (:func:`batchlab.measure.throughput.bare_step_throughput`).

``--optimizer`` picks the optimizer of all three (``sgd``: plain SGD, learning rate 0.1; ``adam``: the
reference tutorial's, learning rate 0.001; ``momentum``: 0.1).

The three are interleaved ``--rounds`` times in one process (for each B, the three loops one after
the other, in an order that rotates from round to round), which keeps a busy or noisy machine from
favouring one of them. Printed: the machine and device; per B the median and the best of each rate
over the rounds; and the **paired** figures: for each round the speed-up (b)/(a) and the engine's
overhead over the floor ((c) - (b)) / (c) from the three measurements taken back to back in that
round, summarised by their median and quartiles over the rounds. The paired figures are the ones to
quote: a slow spell of the machine slows all three loops of a round alike and cancels out of them,
while it does not cancel out of a ratio of two medians taken from different rounds.
Every clock is read after a device synchronisation.

``--plot-cost`` measures instead what the live plot (:class:`batchlab.plots.training.LiveTrainingPlot`,
default settings, Agg backend) costs during a run like notebook 05's (B = 16, 30 epochs): the time
spent inside its callback as a share of the ``train`` call, and the wall time of runs with and without
it, interleaved.

``--threads`` sets PyTorch's intra-op CPU threads for all three (default 1; 0 keeps PyTorch's own
default). On a shared 2-core machine a second thread made these tiny models 10-25x *slower* (it waits
for a core), so the default is 1; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

from batchlab.data import DigitsSplit, load_digits_split
from batchlab.devices import describe_device, resolve_device
from batchlab.measure.throughput import (
    bare_step_throughput,
    dataloader_loop_throughput,
    engine_throughput,
)
from batchlab.models import make_mlp

LOOPS = ("dataloader", "engine", "floor")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


LEARNING_RATES = {"sgd": 0.1, "momentum": 0.1, "adam": 0.001}


def measure(
    loop: str, batch_size: int, split: DigitsSplit, device: torch.device, min_seconds: float,
    optimizer: str = "sgd",
) -> float:
    """Samples per second of one loop at one batch size (one measurement) on ``split``'s training set."""
    kwargs = {"device": device, "min_seconds": min_seconds, "optimizer": optimizer,
              "lr": LEARNING_RATES[optimizer]}
    if loop == "dataloader":
        result = dataloader_loop_throughput(make_mlp, split, [batch_size], **kwargs)
    elif loop == "engine":
        result = engine_throughput(make_mlp, split, [batch_size], **kwargs)
    else:
        result = bare_step_throughput(make_mlp, [batch_size], **kwargs)
    return result[0].samples_per_second


def plot_cost(device: torch.device, rounds: int) -> None:
    """Share of a notebook-sized run spent in the live plot's callback, and wall time with/without it."""
    import matplotlib

    matplotlib.use("Agg")
    from batchlab.arithmetic import iterations_per_epoch
    from batchlab.history import TimedCallback
    from batchlab.plots.training import LiveTrainingPlot
    from batchlab.training import train

    split = load_digits_split()
    batch_size, epochs = 16, 30
    shares, redraws, with_plot, without = [], [], [], []
    for _ in range(rounds + 1):  # the first round warms up and is not kept
        plot = LiveTrainingPlot(epochs, iterations_per_epoch(split.n_train, batch_size))
        timed = TimedCallback(plot)  # the time inside the plot's hooks
        started = time.perf_counter()
        train(make_mlp(), split, batch_size=batch_size, epochs=epochs, device=device, progress=False,
              callbacks=[timed])
        seconds = time.perf_counter() - started
        shares.append(timed.seconds / seconds)
        redraws.append(plot.draw_count)
        with_plot.append(seconds)
        started = time.perf_counter()
        train(make_mlp(), split, batch_size=batch_size, epochs=epochs, device=device, progress=False)
        without.append(time.perf_counter() - started)
    shares, redraws, with_plot, without = shares[1:], redraws[1:], with_plot[1:], without[1:]
    print(f"\nlive plot, B = {batch_size}, {epochs} epochs, min_interval_s = 0.5 (default), {rounds} rounds")
    print(f"time inside the plot's callback / train() call: median {statistics.median(shares):.1%} "
          f"(min {min(shares):.1%}, max {max(shares):.1%}); redraws per run: {sorted(redraws)}")
    print(f"train() wall time with / without the plot: median {statistics.median(with_plot):.2f} s / "
          f"{statistics.median(without):.2f} s")


def paired(
    rates: dict[tuple[str, int], list[float]], batch_size: int
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Quartiles (first, median, third) over the rounds of each round's own speed-up (b)/(a) and
    overhead ((c) - (b)) / (c), from the three rates measured back to back in that round."""
    a, e, f = (rates[(loop, batch_size)] for loop in LOOPS)
    speedups = [ei / ai for ai, ei in zip(a, e, strict=True)]
    overheads = [(fi - ei) / fi for ei, fi in zip(e, f, strict=True)]
    return quartiles(speedups), quartiles(overheads)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile), interpolated as NumPy's default does."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest present)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 128, 512])
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved repetitions (default 15; 5 with --plot-cost)")
    parser.add_argument("--min-seconds", type=float, default=0.1, help="length of each measurement")
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0: PyTorch default)")
    parser.add_argument("--optimizer", choices=sorted(LEARNING_RATES), default="sgd",
                        help="the optimizer of all three loops (default sgd)")
    parser.add_argument("--plot-cost", action="store_true", help="measure the live plot's cost instead")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 5 if args.plot_cost else 15
    if args.rounds < 1 or args.min_seconds <= 0 or args.threads < 0 or min(args.batch_sizes) < 1:
        parser.error("--rounds >= 1, --min-seconds > 0, --threads >= 0 and batch sizes >= 1 are required")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    print(f"device: {describe_device(device)}; CPU: {cpu_name()}, {os.cpu_count()} logical cores")
    print(f"torch {torch.__version__}, Python {platform.python_version()}, {load()} at start")
    print(f"optimizer: {args.optimizer}, learning rate {LEARNING_RATES[args.optimizer]}")
    started = time.perf_counter()
    if args.plot_cost:
        plot_cost(device, args.rounds)
        print(f"{load()} at end; {time.perf_counter() - started:.0f} s in all")
        return 0
    split = load_digits_split()
    for b in args.batch_sizes:  # warm-up: first calls pay for lazy initialisation
        for loop in LOOPS:
            measure(loop, b, split, device, 0.02, args.optimizer)
    rates: dict[tuple[str, int], list[float]] = {}
    for round_index in range(args.rounds):
        for b in args.batch_sizes:
            shift = round_index % len(LOOPS)  # rotate the order: no loop always runs first or last
            for loop in LOOPS[shift:] + LOOPS[:shift]:
                rates.setdefault((loop, b), []).append(measure(loop, b, split, device, args.min_seconds,
                                                                     args.optimizer))

    for title, pick in (("median", statistics.median), ("best (least disturbed)", max)):
        print(f"\nsamples/s, {title} of {args.rounds} interleaved rounds of about {args.min_seconds} s each")
        print(f"{'B':>5} {'(a) DataLoader':>15} {'(b) engine':>12} {'(c) floor':>12} {'(b)/(a)':>8} "
              f"{'overhead':>9}")
        for b in args.batch_sizes:
            a, e, f = (pick(rates[(loop, b)]) for loop in LOOPS)
            print(f"{b:>5} {a:>15,.0f} {e:>12,.0f} {f:>12,.0f} {e / a:>7.2f}x {(f - e) / f:>8.1%}")
    print(f"\npaired: each round's own (b)/(a) and overhead; median [quartiles] over {args.rounds} rounds")
    print(f"{'B':>5} {'(b)/(a)':>22} {'overhead':>24}")
    for b in args.batch_sizes:
        speedup, overhead = paired(rates, b)
        print(f"{b:>5} {speedup[1]:>7.2f}x [{speedup[0]:.2f}, {speedup[2]:.2f}] "
              f"{overhead[1]:>8.1%} [{overhead[0]:.1%}, {overhead[2]:.1%}]")
    spread = max(
        (max(v) - min(v)) / statistics.median(v) for v in rates.values()
    )
    print(f"\nlargest spread (max - min) / median over the rounds: {spread:.0%}")
    print(f"{load()} at end; {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
