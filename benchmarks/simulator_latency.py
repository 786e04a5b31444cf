"""How responsive is the training simulator (notebook 06)? Prints four measurements.

1. **Control → synced live view**: time from setting a control's value (what a slider move does) to
   the end of the kernel's work: the matplotlib artists changed and the bqplot live view synced
   (:meth:`batchlab.plots.mirror.LiveFigure.sync`: the changed marks' data handed to the widget
   messages). The browser then draws the SVG; ``benchmarks/widget_latency.py`` measures that part.
2. **Refresh share during a run**: a run in the background thread, as the Start button makes it
   (refreshes happen in the training thread, so they cost training time): time spent refreshing the
   views while training (artists and live-view syncs), as a share of the training time; and the
   training time against the same training without the app (``train`` alone). Target: under 10 %.
3. **Stop latency**: ``stop()`` during a run, until the training loop has been left, and until the run
   has ended with its final views synced.
4. **Main-thread responsiveness while training**: how late a 5 ms sleep in the main thread (where the
   kernel handles widget messages) wakes up while the background thread trains.

Timings are wall-clock and depend on the machine and its load; run it twice and compare ratios.
Usage: ``python benchmarks/simulator_latency.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import matplotlib

matplotlib.use("Agg")

import torch

from batchlab.apps.simulator import TrainingSimulatorApp
from batchlab.data import load_digits_split
from batchlab.models import make_mlp
from batchlab.plots.mirror import has_live_figure
from batchlab.training import train


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.1f} ms"


def control_latency(app: TrainingSimulatorApp, repeats: int) -> None:
    assert has_live_figure(app.fig), "the app shows no live view"
    moves = [
        ("batch size", app.batch_size, [16, 64]),
        ("dataset size", app.dataset_size, [900, 1347]),
        ("learning rate", app.learning_rate, [0.3, 0.1]),
        ("epochs", app.epochs, [10, 20]),
        ("drop_last", app.drop_last, [True, False]),
    ]
    print("1. control change -> artists changed and the live view synced (in the kernel)")
    for name, control, values in moves:
        latencies = []
        for k in range(repeats):
            started = time.perf_counter()
            control.value = values[k % 2]  # the app's observer changes the artists and syncs the view
            latencies.append(time.perf_counter() - started)
        print(f"   {name:14} median {ms(statistics.median(latencies))}   max {ms(max(latencies))}"
              f"   ({repeats} changes)")


def drawing_share(data, n: int, b: int, epochs: int) -> None:
    app = TrainingSimulatorApp(n_samples=n, batch_size=b, epochs=epochs, data=data, device="cpu")
    app.start()
    history = app.wait()
    t = app.timing
    started = time.perf_counter()
    bare = train(make_mlp(seed=0), data.take(n), batch_size=b, epochs=epochs, lr=0.1, seed=0,
                 device="cpu", progress=False)
    bare_wall = time.perf_counter() - started
    assert bare.iteration_losses == history.iteration_losses  # the same run
    print(f"2. run N={n}, B={b}, E={epochs} ({history.iterations:,} iterations) in the background "
          "thread, live-view syncs")
    print(f"   while training: {int(t['refreshes'])} refreshes (read-outs every {app.min_redraw_s} s, "
          f"figure every {app.figure_every_s} s): {t['view_s']:.3f} s over {t['training_s']:.2f} s of "
          f"training = share {t['view_share']:.1%} (target < 10 %)")
    print(f"   training time: in the app {t['training_s']:.2f} s, train() alone {bare_wall:.2f} s "
          f"(ratio {t['training_s'] / bare_wall:.2f}); final refresh after the run "
          f"{ms(t['final_refresh_s']).strip()}")
    app.close()


def stop_latency(data, repeats: int) -> None:
    app = TrainingSimulatorApp(n_samples=1347, batch_size=1, epochs=100, data=data, device="cpu")
    latencies, loop_exits = [], []
    for _ in range(repeats):
        app.start()
        while app.progress.value < 2000:
            time.sleep(0.01)  # let it run for a while
        started = time.perf_counter()
        app.stop()
        latencies.append(time.perf_counter() - started)
        loop_exits.append(latencies[-1] - app.timing["final_refresh_s"])
        assert not app.is_running and app.history.stopped
    print("3. stop() -> training loop left; -> run ended with its final views synced")
    print(f"   loop left: median {ms(statistics.median(loop_exits))}   max {ms(max(loop_exits))};"
          f"   ended: median {ms(statistics.median(latencies))}   max {ms(max(latencies))}"
          f"   ({repeats} stops)")
    app.close()


def main_thread_lag(data, samples: int) -> None:
    app = TrainingSimulatorApp(n_samples=1347, batch_size=1, epochs=100, data=data, device="cpu")
    app.start()
    while app.progress.value < 500:
        time.sleep(0.01)
    lags = []
    for _ in range(samples):
        started = time.perf_counter()
        time.sleep(0.005)
        lags.append(time.perf_counter() - started - 0.005)
    stopper = threading.Thread(target=app.stop)
    stopper.start()
    stopper.join()
    lags.sort()
    print("4. main thread while training in the background: extra delay of a 5 ms sleep")
    print(f"   median {ms(statistics.median(lags))}   95th percentile {ms(lags[int(0.95 * len(lags))])}"
          f"   max {ms(lags[-1])}   ({samples} samples)")
    app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a shorter run")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in notebook 06: this small network is fastest on one thread
    data = load_digits_split()
    train(make_mlp(), data.take(200), batch_size=50, epochs=1, progress=False, device="cpu")  # warm-up
    app = TrainingSimulatorApp(data=data, device="cpu")
    control_latency(app, repeats=4 if args.quick else 10)
    app.close()
    drawing_share(data, n=1347, b=1, epochs=5 if args.quick else 20)
    stop_latency(data, repeats=3 if args.quick else 5)
    main_thread_lag(data, samples=100 if args.quick else 300)
    print("Timings are wall-clock on this machine under its current load.")


if __name__ == "__main__":
    main()
