"""batchlab.distributed: W real processes (gloo over 127.0.0.1) give what the arithmetic and the
one-process references say, and the launcher cleans up after success, failure, a hang or an interrupt.

Each launch costs a few seconds (every rank imports torch), so one launch at W = 2 serves several
checks; a background thread watches the ranks' listening sockets during it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import ddp_faults  # tests/ddp_faults.py: rank functions that misbehave (importable by the ranks)
import numpy as np
import psutil
import pytest

from batchlab import arithmetic as ar
from batchlab import distributed as dp
from batchlab.data import load_digits_split

W, B, EPOCHS = 2, 32, 2
N_PRACTICE, N_EVAL, A = 301, 7, 4  # odd sizes, so that W = 2 pads one sample of each
REPO = Path(__file__).resolve().parents[1]


def rank_processes() -> set[int]:
    """PIDs of this process's descendants, without multiprocessing's resource tracker (a helper that
    lives as long as this process, by design)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def assert_no_rank_left(before: set[int]) -> None:
    left = rank_processes() - before
    alive = [pid for pid in left if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left running: {alive}"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread in this process, as each rank has: two threads on a loaded 2-core machine spin."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def split():
    return load_digits_split()


@pytest.fixture(scope="module")
def run(split):
    """One W = 2 launch of train_and_time, with the addresses its processes listened on."""
    before = rank_processes()
    listening: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in rank_processes() - before:
                try:
                    for conn in psutil.Process(pid).net_connections(kind="inet"):
                        if conn.status == psutil.CONN_LISTEN:
                            listening.add(conn.laddr.ip)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        results = dp.launch(dp.train_and_time, W, split.x_train, split.y_train, batch_size=B,
                            epochs=EPOCHS, updates=10, x_eval=split.x_val[:N_EVAL],
                            y_eval=split.y_val[:N_EVAL], timeout=240)
    finally:
        done.set()
        watcher.join()
    return {"results": results, "listening": listening, "before": before}


def test_per_rank_counts_match_the_arithmetic(run, split) -> None:
    n = split.n_train
    assert n % W == 1  # so that the padding is real: one sample appears twice per epoch
    for rank, result in enumerate(r["plain"] for r in run["results"]):
        assert result["samples"] == ar.per_rank_samples(n, W)
        assert result["samples_drop_last"] == ar.per_rank_samples(n, W, drop_last=True)
        assert result["iterations"] == ar.per_rank_iterations(n, B, W)
        assert len(result["losses"]) == ar.per_rank_iterations(n, B, W) * EPOCHS
        orders = result["orders"]
        assert [len(order) for order in orders] == [ar.per_rank_samples(n, W)] * EPOCHS
        assert orders[0] != orders[1], f"rank {rank}: set_epoch did not change the order"
    for epoch in range(EPOCHS):
        seen = [i for result in run["results"] for i in result["plain"]["orders"][epoch]]
        assert sorted(set(seen)) == list(range(n))  # every sample, and only the padding twice
        assert len(seen) - n == ar.per_rank_samples(n, W) * W - n == 1


def test_three_roads_give_the_same_weights(run, split) -> None:
    ddp = run["results"][0]["plain"]["weights"]
    assert np.array_equal(ddp, run["results"][1]["plain"]["weights"]), "the ranks' weights differ"
    start = dp.train_single(split.x_train, split.y_train, world_size=W, epochs=0)["weights"]
    assert np.abs(ddp - start).max() > 1e-2, "training did not move the weights"
    rank_mean = np.mean([r["plain"]["losses"] for r in run["results"]], axis=0)  # equal batch sizes
    for accumulate in (False, True):
        single = dp.train_single(split.x_train, split.y_train, world_size=W, batch_size=B, epochs=EPOCHS,
                                 accumulate=accumulate)
        assert np.abs(single["weights"] - ddp).max() < 1e-5
        np.testing.assert_allclose(single["losses"], rank_mean, atol=1e-5)


def test_batch_norm_breaks_the_big_batch_but_not_accumulation(run, split) -> None:
    ddp = run["results"][0]["batch_norm"]["weights"]
    kwargs = {"world_size": W, "batch_size": B, "epochs": EPOCHS, "batch_norm": True}
    big = dp.train_single(split.x_train, split.y_train, **kwargs)["weights"]
    small = dp.train_single(split.x_train, split.y_train, accumulate=True, **kwargs)["weights"]
    assert np.abs(small - ddp).max() < 1e-5  # statistics over 32 samples, like each rank's
    assert np.abs(big - ddp).max() > 1e-3  # statistics over 64


def test_timing_splits_an_update_into_compute_and_all_reduce(run, split) -> None:
    for result in run["results"]:
        timing = result["timing"]
        assert timing["allreduce_s"] > 0 and timing["buffer_allreduce_s"] > 0 and timing["compute_s"] > 0
        assert timing["compute_s"] + timing["allreduce_s"] == pytest.approx(timing["update_s"])
        assert timing["bytes"] == 4 * 4_810  # the 64-64-10 MLP
    alone = dp.time_updates(split.x_train, split.y_train, updates=5, rounds=1)
    assert alone["allreduce_s"] == alone["buffer_allreduce_s"] == 0
    assert alone["compute_s"] == alone["update_s"] > 0




@pytest.fixture(scope="module")
def practice(split):
    """One W = 2 launch of accumulate_and_evaluate on a slice of the digits (one round: fast)."""
    weights = dp.train_single(split.x_train, split.y_train, world_size=W, epochs=1)["weights"]
    before = rank_processes()
    results = dp.launch(dp.accumulate_and_evaluate, W, split.x_train[:N_PRACTICE], split.y_train[:N_PRACTICE],
                        split.x_val[:N_EVAL], split.y_val[:N_EVAL], batch_size=B, accumulation_steps=A,
                        rounds=1, weights=weights, timeout=240)
    assert_no_rank_left(before)
    return {"results": results, "weights": weights}


def test_no_sync_skips_all_but_one_all_reduce_per_update_and_keeps_the_weights(practice) -> None:
    batches = ar.per_rank_iterations(N_PRACTICE, B, W)  # 151 samples per rank -> 5 batches
    updates = -(-batches // A)
    bucket = 4 * 4_810  # the 64-64-10 MLP, float32, in one bucket
    for result in practice["results"]:
        sync, quiet = result["sync"], result["no_sync"]
        assert sync["backward_passes"] == quiet["backward_passes"] == batches
        assert sync["updates"] == quiet["updates"] == updates
        assert (sync["allreduce_calls"], sync["allreduce_bytes"]) == (batches, batches * bucket)
        assert (quiet["allreduce_calls"], quiet["allreduce_bytes"]) == (updates, updates * bucket)
        assert np.abs(sync["weights"] - quiet["weights"]).max() < 1e-5
        assert sync["seconds"] > 0 and quiet["seconds"] > 0
    first, second = (r["no_sync"]["weights"] for r in practice["results"])
    assert np.array_equal(first, second), "the ranks' weights differ"
    start = dp.train_single(np.zeros((4, 64), np.float32), np.zeros(4, np.int64), world_size=W, epochs=0)
    assert np.abs(first - start["weights"]).max() > 1e-3, "training did not move the weights"


def test_sharded_evaluation_counts_the_padding_and_the_trimmed_count_is_exact(practice, split) -> None:
    import torch
    from torch.nn.utils import vector_to_parameters

    from batchlab.models import make_mlp

    model = make_mlp()
    vector_to_parameters(torch.tensor(practice["weights"]), model.parameters())
    model.eval()
    for key, x, y in (("evaluate_train", split.x_train[:N_PRACTICE], split.y_train[:N_PRACTICE]),
                      ("evaluate_eval", split.x_val[:N_EVAL], split.y_val[:N_EVAL])):
        with torch.no_grad():
            right = (model(torch.tensor(x)).argmax(dim=1) == torch.tensor(y)).numpy()
        n = len(y)
        padded = W * ar.per_rank_samples(n, W) - n
        assert padded == 1
        for result in practice["results"]:  # every rank has the summed counts
            e = result[key]
            counts = (e["n"], e["padded"], e["padded_counted"], e["trimmed_counted"])
            assert counts == (n, padded, n + padded, n)
            assert e["trimmed_correct"] == int(right.sum())
            assert e["padded_correct"] == int(right.sum() + right[:padded].sum())  # the list's head, again


def test_train_and_time_runs_the_practice_section_on_the_plain_weights(run, split) -> None:
    batches = ar.per_rank_iterations(split.n_train, B, W)
    for result in run["results"]:
        practice = result["practice"]
        assert practice["sync"]["allreduce_calls"] == batches
        assert practice["no_sync"]["allreduce_calls"] == -(-batches // A)
        assert practice["evaluate_eval"]["trimmed_counted"] == N_EVAL
        assert practice["evaluate_train"]["padded"] == 1  # N = 1,347 on 2 ranks
    # the evaluation used the DDP run's weights: the same count as this process gets from them
    import torch
    from torch.nn.utils import vector_to_parameters

    from batchlab.models import make_mlp

    model = make_mlp()
    vector_to_parameters(torch.tensor(run["results"][0]["plain"]["weights"]), model.parameters())
    x, y = torch.tensor(split.x_val[:N_EVAL]), torch.tensor(split.y_val[:N_EVAL])
    with torch.no_grad():
        right = model.eval()(x).argmax(dim=1) == y
    assert run["results"][0]["practice"]["evaluate_eval"]["trimmed_correct"] == int(right.sum())


def test_accumulation_and_evaluation_refuse_bad_arguments(split) -> None:
    x, y = split.x_train[:8], split.y_train[:8]
    weights = np.zeros(4_810, np.float32)
    with pytest.raises(ValueError, match="accumulation_steps must be an integer >= 1, got 0"):
        dp.train_accumulated_ddp(x, y, accumulation_steps=0)
    with pytest.raises(TypeError, match="no_sync must be"):
        dp.train_accumulated_ddp(x, y, no_sync="yes")
    with pytest.raises(RuntimeError, match="train_accumulated_ddp runs inside a process group"):
        dp.train_accumulated_ddp(x, y)
    with pytest.raises(ValueError, match=r"weights must be a vector of 4810 numbers .* got shape \(3,\)"):
        dp.evaluate_ddp(x, y, weights=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="x and y must hold the same number of samples"):
        dp.evaluate_ddp(x, y[:3], weights=weights)
    with pytest.raises(RuntimeError, match="evaluate_ddp runs inside a process group"):
        dp.evaluate_ddp(x, y, weights=weights)
    with pytest.raises(ValueError, match="x_eval and y_eval must be given together"):
        dp.train_and_time(x, y, x_eval=x)
    with pytest.raises(ValueError, match="rounds must be an integer >= 1"):
        dp.accumulate_and_evaluate(x, y, x, y, rounds=0)

def test_nothing_listens_beyond_loopback_and_nothing_is_left(run) -> None:
    assert run["listening"], "the watcher saw no listening socket (the check would prove nothing)"
    assert run["listening"] <= {"127.0.0.1"}, run["listening"]
    assert_no_rank_left(run["before"])


def test_a_failing_rank_is_one_clear_error_and_stops_the_others(split) -> None:
    before = rank_processes()
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"^rank 1 of 2 failed with RuntimeError: rank 1 fails on "
                                           r"purpose at update 3; the other ranks were stopped"):
        dp.launch(dp.train_ddp, 2, split.x_train, split.y_train, fail_at_update=3, timeout=240)
    assert time.monotonic() - start < 240  # rank 0, waiting in the all-reduce, did not hold it up
    assert_no_rank_left(before)


def test_a_hung_rank_times_out_and_is_stopped() -> None:
    before = rank_processes()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"ranks \[0, 1\] of 2 still running after timeout=4 s"):
        dp.launch(time.sleep, 2, 600, timeout=4)
    assert time.monotonic() - start < 4 + 12  # the timeout, then SIGTERM (SIGKILL after 5 s)
    assert_no_rank_left(before)


def test_a_keyboard_interrupt_stops_every_rank() -> None:
    before = rank_processes()
    timer = threading.Timer(3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            dp.launch(time.sleep, 2, 600, timeout=120)
    finally:
        timer.cancel()
    assert_no_rank_left(before)


def local_function() -> None:
    """Stands for a function defined in a notebook cell (its module is __main__)."""


local_function.__module__ = "__main__"


def test_bad_arguments_are_refused_before_anything_starts(split) -> None:
    before = rank_processes()
    with pytest.raises(TypeError, match="defined in __main__"):
        dp.launch(local_function, 2)
    with pytest.raises(ValueError, match="world_size must be an integer >= 1"):
        dp.launch(time.sleep, 0, 1)
    with pytest.raises(ValueError, match="timeout must be"):
        dp.launch(time.sleep, 2, 1, timeout=0)
    with pytest.raises(TypeError, match="fn must be a function"):
        dp.launch("train", 2)
    with pytest.raises((TypeError, AttributeError, pickle_error())):
        dp.launch(time.sleep, 2, lambda: None)  # a lambda cannot reach another process
    with pytest.raises(RuntimeError, match="runs inside a process group"):
        dp.train_ddp(split.x_train, split.y_train)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        dp.train_single(split.x_train, split.y_train, world_size=2, batch_size=0)
    assert_no_rank_left(before)


def pickle_error() -> type[Exception]:
    import pickle

    return pickle.PicklingError


def test_main_refuses_a_bad_world_size_in_words(capsys) -> None:
    """``make ddp W=0`` runs ``python -m batchlab.distributed --world-size 0``: a usage error naming
    the option, not torch's bare AssertionError."""
    with pytest.raises(SystemExit) as exit_info:
        dp.main(["--world-size", "0"])
    assert exit_info.value.code == 2
    assert "--world-size must be an integer >= 1 and <= 64, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dp.main(["--world-size", str(dp.max_world_size() + 1)])
    assert "--oversubscribe" in capsys.readouterr().err


def test_make_ddp_starts_the_ranks_through_the_launcher() -> None:
    """Not torchrun (whose store listens on every interface): the launcher, which binds 127.0.0.1."""
    result = subprocess.run(["make", "--no-print-directory", "-n", "ddp", "W=3"], cwd=REPO,
                            capture_output=True, text=True, check=True)
    assert "torchrun" not in result.stdout
    # the last line of the recipe (under `make test`, make may add lines of its own around it)
    command = [line for line in result.stdout.splitlines() if "batchlab.distributed" in line][-1]
    assert "-m batchlab.distributed --world-size 3" in command, result.stdout


def test_world_size_is_capped_by_the_cores_and_memory_unless_oversubscribed() -> None:
    limit = dp.max_world_size()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 2 <= limit <= max(2, cores)
    assert dp.check_world_size(limit) == limit
    with pytest.raises(ValueError, match=rf"world_size must be <= {limit} on this machine \({cores} CPU "
                                         r"cores.*got 64; pass oversubscribe=True"):
        dp.launch(time.sleep, 64, 1)
    assert dp.check_world_size(limit + 1, oversubscribe=True) == limit + 1
    with pytest.raises(ValueError, match="world_size must be an integer >= 1 and <= 64, got 65"):
        dp.check_world_size(65, oversubscribe=True)
    with pytest.raises(TypeError, match="oversubscribe must be True or False"):
        dp.check_world_size(2, oversubscribe="yes")


def test_timeout_is_checked_against_its_range() -> None:
    before = rank_processes()
    for bad in (1e15, float("inf"), -1.0):
        with pytest.raises(ValueError, match=r"timeout must be a finite number > 0 and <= 604800"):
            dp.launch(time.sleep, 2, 1, timeout=bad)
    assert_no_rank_left(before)


# The learner's own error is reported, whatever order the ranks fail in (W = 3 on a 2-core machine:
# oversubscribed on purpose, which makes the races more likely, not less).
@pytest.mark.parametrize(("bad_rank", "late"), [(2, False), (2, True), (0, False)],
                         ids=["rank 2 while the others all-reduce", "rank 2 while the others wait to leave",
                              "rank 0 (the store's host)"])
def test_the_rank_that_raised_is_reported_not_its_peers(bad_rank, late) -> None:
    before = rank_processes()
    with pytest.raises(RuntimeError) as raised:
        dp.launch(ddp_faults.one_rank_raises, 3, bad_rank, late, timeout=120, oversubscribe=True)
    message = str(raised.value)
    first = message.splitlines()[0]
    assert first == (f"rank {bad_rank} of 3 failed with ValueError: rank {bad_rank} raises on purpose; "
                     "the other ranks were stopped."), message
    assert f"Traceback of rank {bad_rank}:" in message and "ddp_faults.py" in message
    assert "Connection closed" not in message
    assert_no_rank_left(before)


@pytest.mark.parametrize("hard", [False, True], ids=["sys.exit(0)", "os._exit(0)"])
def test_a_rank_that_exits_early_with_code_0_is_the_failure(hard) -> None:
    before = rank_processes()
    with pytest.raises(RuntimeError) as raised:
        dp.launch(ddp_faults.one_rank_exits, 2, 1, 0, hard, timeout=120)
    first = str(raised.value).splitlines()[0]
    if hard:
        assert first.startswith("rank 1 of 2 ended with exit code 0 without returning a result"), first
    else:
        assert first.startswith("rank 1 of 2 failed with SystemExit: the function called sys.exit(0)"), first
    assert_no_rank_left(before)


def test_a_script_without_the_main_guard_is_told_about_it(tmp_path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text("import time\n\nfrom batchlab import distributed\n\n"
                      "distributed.launch(time.sleep, 2, 0, timeout=120)\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "while starting, before it could run the function" in last, result.stderr[-3000:]
    assert 'call launch only under `if __name__ == "__main__":`' in last


def other_interface() -> str | None:
    """A network interface with an IPv4 address that is not the loopback one (None on a machine without
    one): where gloo would listen if the environment had its way."""
    names = [name for name, addresses in psutil.net_if_addrs().items()
             if any(a.family == socket.AF_INET and not a.address.startswith("127.") for a in addresses)]
    return sorted(names)[0] if names else None


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2; .ci/run installs it)")
@pytest.mark.skipif(other_interface() is None, reason="needs a network interface besides loopback")
def test_ranks_listen_on_loopback_only_whatever_gloo_socket_ifname_says(monkeypatch) -> None:
    """``ss -ltnp`` during a launch with GLOO_SOCKET_IFNAME naming another interface: every socket the
    ranks listen on is bound to 127.0.0.1."""
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", other_interface())
    before = rank_processes()
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            ranks = rank_processes() - before
            listing = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
            for line in listing.splitlines():
                pids = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
                if pids & ranks:
                    seen.append(line.split()[3])  # the local address:port
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with pytest.warns(RuntimeWarning, match=r"GLOO_SOCKET_IFNAME=\S+ is ignored"):
            assert dp.launch(ddp_faults.listen_a_while, 2, 3.0, timeout=120) == [0, 1]
    finally:
        done.set()
        watcher.join()
    print(f"ss -ltnp saw {len(seen)} listening sockets of the ranks: {sorted(set(seen))}")
    assert seen, "ss saw no listening socket of the ranks (the check would prove nothing)"
    assert all(address.startswith("127.0.0.1:") for address in seen), sorted(set(seen))
    assert_no_rank_left(before)
