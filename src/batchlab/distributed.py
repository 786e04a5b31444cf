"""Data parallelism for real: W processes train one model with PyTorch's distributed engine (``gloo``).

One training function, :func:`train_ddp`, runs on every rank. Two ways start it:

* from a notebook or a script, :func:`launch` starts W processes with ``torch.multiprocessing``
  (start method "spawn": each process imports the function by name, so it must live in a module such
  as this one, not in a notebook cell), joins them into a process group over 127.0.0.1 and returns
  what the function returned on each rank, in rank order;
* from a terminal, ``torchrun --standalone --nproc-per-node 2 -m batchlab.distributed`` (or
  ``make ddp W=2``) starts the processes, and :func:`main` runs on each of them.

:func:`train_single` is the one-process reference: the same sample order, taken either as one batch
of B·W or as W batches of B whose gradients are accumulated exactly. :func:`time_updates` splits the
time of an update into compute and all-reduce.

Safe to use from a notebook: :func:`launch` turns a rank that raises into one ``RuntimeError`` (the
first failure, with its traceback), stops the other ranks (which would otherwise wait in a collective),
gives up after ``timeout`` seconds, and leaves no process running after success, failure or a keyboard
interrupt. Nothing listens beyond 127.0.0.1: rank 0 opens the rendezvous socket itself on 127.0.0.1
(``TCPStore`` given a host would listen on every interface), and ``gloo`` is pinned to the loopback
interface (``GLOO_SOCKET_IFNAME``).
"""

from __future__ import annotations

import argparse
import multiprocessing.connection
import os
import pickle
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parameters_to_vector
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from batchlab.models import make_mlp
from batchlab.validation import require_bool, require_int, require_positive_float

__all__ = ["free_port", "launch", "main", "time_updates", "train_and_time", "train_ddp", "train_single"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the operating system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pin_gloo_to_loopback() -> None:
    """Make gloo listen on the loopback interface only (it otherwise uses the host name's address)."""
    for name in {"lo", "lo0"} & {name for _, name in socket.if_nameindex()}:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", name)


def _run_rank(rank: int, world_size: int, port: int, timeout: float, folder: str) -> None:
    """The body of one spawned process: join the group, run the function, leave its result in a file.

    The function and its arguments come from a file too: a large payload written to a process that
    dies while starting would block the parent, and a tensor put on a queue by a process that then
    exits cannot be read by the parent.
    """
    with open(os.path.join(folder, "call.pickle"), "rb") as file:
        fn, args, kwargs = pickle.load(file)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    _pin_gloo_to_loopback()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))  # the ranks share the cores
    listener = socket.create_server(("127.0.0.1", port)) if rank == 0 else None
    store = dist.TCPStore("127.0.0.1", port, world_size, rank == 0, timedelta(seconds=timeout),
                          master_listen_fd=listener.fileno() if listener else None)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout))
    try:
        result = fn(*args, **kwargs)
        dist.barrier()  # no rank leaves (and closes the store) while another still needs it
    finally:
        dist.destroy_process_group()
    path = os.path.join(folder, f"rank{rank}.pickle")
    with open(path + ".part", "wb") as file:
        pickle.dump(result, file)
    os.replace(path + ".part", path)  # the parent never reads half a file


def _failure(rank: int, world_size: int, exitcode: int, error_file: str) -> str:
    """One line saying which rank failed and how, then that rank's traceback (if it raised)."""
    if not os.path.exists(error_file):  # killed by a signal, or exited without raising
        how = f"signal {-exitcode}" if exitcode < 0 else f"exit code {exitcode}"
        return f"rank {rank} of {world_size} ended with {how}; the other ranks were stopped"
    with open(error_file, "rb") as file:
        trace = pickle.load(file)
    return (f"rank {rank} of {world_size} failed with {trace.strip().splitlines()[-1]}; the other ranks "
            f"were stopped.\n\nTraceback of rank {rank}:\n{trace}")


def _stop(processes: list) -> None:
    """Terminate every process still running (SIGTERM, then SIGKILL after 5 s) and reap them all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


def launch(fn: Callable[..., Any], world_size: int, *args: Any, timeout: float = 120.0,
           **kwargs: Any) -> list[Any]:
    """Run ``fn(*args, **kwargs)`` on ``world_size`` processes joined in one ``gloo`` process group.

    Each process is a rank: inside ``fn``, ``torch.distributed.get_rank()`` is 0 … W−1 and collectives
    (``all_reduce``, ``DistributedDataParallel``) reach the other ranks. The environment is what
    torchrun sets: ``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``; each rank
    gets ``cpu_count // W`` threads. ``fn`` must be importable (defined in a module, not in a notebook
    cell) and should return plain data (numbers, lists, NumPy arrays).

    Returns the W results in rank order. Raises ``RuntimeError`` naming the first rank that failed
    (with its traceback), or ``TimeoutError`` after ``timeout`` seconds (also the limit of every
    collective); either way, and on a keyboard interrupt, every process is stopped before returning.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__} {fn!r}")
    if getattr(fn, "__module__", None) == "__main__":
        raise TypeError(f"fn must be importable by the spawned processes, but {fn.__name__!r} is defined "
                        "in __main__ (a notebook cell or a script): define it in a module and import it")
    world_size = require_int("world_size", world_size, minimum=1, maximum=64)
    timeout = require_positive_float("timeout", timeout)
    folder = tempfile.mkdtemp(prefix="batchlab-ddp-")
    processes, error_files = [], []
    try:
        with open(os.path.join(folder, "call.pickle"), "wb") as file:
            pickle.dump((fn, args, kwargs), file)  # an argument that cannot be pickled fails here
        context = mp.start_processes(_run_rank, args=(world_size, free_port(), timeout, folder),
                                     nprocs=world_size, join=False, start_method="spawn")
        processes, error_files = context.processes, context.error_files
        deadline = time.monotonic() + timeout
        running = dict(enumerate(processes))
        while running:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"ranks {sorted(running)} of {world_size} still running after "
                                   f"timeout={timeout:g} s; every rank was stopped")
            multiprocessing.connection.wait([p.sentinel for p in running.values()], min(left, 1.0))
            ended = [rank for rank, process in running.items() if process.exitcode is not None]
            failed = [rank for rank in ended if running[rank].exitcode != 0]
            if failed:  # report the first to fail (by its error file's time): the others fail because it did
                first = min(failed, key=lambda r: os.path.getmtime(error_files[r])
                            if os.path.exists(error_files[r]) else float("inf"))
                raise RuntimeError(_failure(first, world_size, running[first].exitcode, error_files[first]))
            for rank in ended:
                del running[rank]
        results = []
        for rank in range(world_size):
            path = os.path.join(folder, f"rank{rank}.pickle")
            if not os.path.exists(path):
                raise RuntimeError(f"rank {rank} of {world_size} ended without a result (interrupted?)")
            with open(path, "rb") as file:
                results.append(pickle.load(file))
        return results
    finally:
        _stop(processes)
        shutil.rmtree(folder, ignore_errors=True)
        for path in error_files:
            if os.path.exists(path):
                os.remove(path)


def _check(batch_size: int, epochs: int, lr: float, hidden: int, batch_norm: bool) -> None:
    require_int("batch_size", batch_size, minimum=1)
    require_int("epochs", epochs, minimum=0)
    require_positive_float("lr", lr)
    require_int("hidden", hidden, minimum=1)
    require_bool("batch_norm", batch_norm)


def train_ddp(x: np.ndarray, y: np.ndarray, *, batch_size: int = 32, epochs: int = 2, lr: float = 0.2,
              seed: int = 0, hidden: int = 64, batch_norm: bool = False,
              fail_at_update: int | None = None) -> dict[str, Any]:
    """Train the digits MLP on this rank with ``DistributedDataParallel`` (plain SGD, mean loss).

    The MLP is :func:`batchlab.models.make_mlp` 64 → ``hidden`` → 10; ``batch_norm`` adds a ``BatchNorm1d``
    after its first layer (``norm="batch"``: the same initial weights either way). Runs inside a process group
    (:func:`launch` or torchrun). ``x``: ``(N, 64)`` float32, ``y``: ``(N,)`` int64. Each rank reads its shard
    through ``DistributedSampler(shuffle=True, seed=seed)`` with ``set_epoch(epoch)`` and batches of
    ``batch_size``; DDP averages the gradients over the ranks, so one update uses the global batch B·W.
    ``fail_at_update`` makes the last rank raise at that update (to see a failure). Returns plain data:
    ``weights`` (float32 vector), ``losses`` (this rank's mean loss per update), ``orders`` (this rank's
    sample indices, one list per epoch), ``samples`` and ``samples_drop_last`` (``len`` of the sampler without
    and with ``drop_last``) and ``iterations`` (batches per epoch).
    """
    _check(batch_size, epochs, lr, hidden, batch_norm)
    if fail_at_update is not None:
        require_int("fail_at_update", fail_at_update, minimum=0)
    if not dist.is_initialized():
        raise RuntimeError("train_ddp runs inside a process group: start it with "
                           "launch(train_ddp, W, ...) or torchrun -m batchlab.distributed")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    data = TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(data, batch_size=batch_size, sampler=sampler)
    model = DistributedDataParallel(make_mlp(hidden=(hidden,), seed=seed,
                                             norm="batch" if batch_norm else "none"))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses, orders = [], []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)  # without it every epoch repeats the same order
        orders.append(list(sampler))
        for xb, yb in loader:
            if len(losses) == fail_at_update and rank == world_size - 1:
                raise RuntimeError(f"rank {rank} fails on purpose at update {fail_at_update}")
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()  # DDP all-reduces (averages) the gradients during the backward pass
            optimizer.step()
            losses.append(loss.item())
    cut = DistributedSampler(data, num_replicas=world_size, rank=rank, drop_last=True)
    weights = parameters_to_vector(model.parameters()).detach().numpy()
    return {"weights": weights, "losses": losses, "orders": orders, "samples": len(sampler),
            "samples_drop_last": len(cut), "iterations": len(loader)}


def train_single(x: np.ndarray, y: np.ndarray, *, world_size: int, batch_size: int = 32, epochs: int = 2,
                 lr: float = 0.2, seed: int = 0, hidden: int = 64, batch_norm: bool = False,
                 accumulate: bool = False) -> dict[str, Any]:
    """One process, the sample order :func:`train_ddp` has on ``world_size`` ranks, the same updates.

    Update k uses the k-th batch of every rank's shard (read from the same ``DistributedSampler``s).
    ``accumulate=False``: one batch of B·W samples. ``accumulate=True``: W batches of B, each mean loss
    weighted by its share of the group's samples, gradients summed before one step (exact
    accumulation). Returns ``weights`` and ``losses`` (the mean loss of each update's samples).
    """
    _check(batch_size, epochs, lr, hidden, batch_norm)
    world_size = require_int("world_size", world_size, minimum=1)
    accumulate = require_bool("accumulate", accumulate)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    model = make_mlp(hidden=(hidden,), seed=seed, norm="batch" if batch_norm else "none")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        shards = []
        for rank in range(world_size):
            sampler = DistributedSampler(range(len(x)), world_size, rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            shards.append(torch.tensor(list(sampler)).split(batch_size))
        for group in zip(*shards, strict=True):  # update k: batch k of every rank
            optimizer.zero_grad()
            total, loss = sum(len(batch) for batch in group), 0.0
            for batch in group if accumulate else [torch.cat(group)]:
                part = F.cross_entropy(model(x[batch]), y[batch]) * (len(batch) / total)
                part.backward()
                loss += part.item()
            optimizer.step()
            losses.append(loss)
    return {"weights": parameters_to_vector(model.parameters()).detach().numpy(), "losses": losses}


def time_updates(x: np.ndarray, y: np.ndarray, *, batch_size: int = 32, updates: int = 50, rounds: int = 3,
                 hidden: int = 64) -> dict[str, float]:
    """Seconds per update on this rank, split into compute and all-reduce (the median of ``rounds``).

    Inside a process group the model is wrapped in DDP with a communication hook that all-reduces each
    gradient bucket synchronously and times it: ``allreduce_s`` is that time per update (including the
    wait for the slower rank), ``compute_s = update_s − allreduce_s`` (forward, backward, step), and
    ``buffer_allreduce_s`` is one ``all_reduce`` of a float32 buffer as large as the model, alone
    (``bytes`` = 4 × parameters). Without a group (W = 1) both all-reduce times are 0. Data loading is
    left out: every update uses the first ``batch_size`` samples.
    """
    for name, value in (("batch_size", batch_size), ("updates", updates), ("rounds", rounds)):
        require_int(name, value, minimum=1)
    grouped = dist.is_initialized()
    model = make_mlp(hidden=(hidden,))
    net = DistributedDataParallel(model) if grouped else model
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    xb, yb = torch.as_tensor(x[:batch_size]), torch.as_tensor(y[:batch_size])
    buffer = torch.zeros(sum(p.numel() for p in model.parameters()))
    spent: list[float] = []  # seconds in the all-reduce, one entry per gradient bucket

    def timed_all_reduce(_state, bucket):  # no annotations: DDP checks them, and here they are strings
        start = time.perf_counter()
        gradient = bucket.buffer()
        dist.all_reduce(gradient)  # synchronous (the default hook is asynchronous), so it can be timed
        gradient /= dist.get_world_size()
        spent.append(time.perf_counter() - start)
        future: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        future.set_result(gradient)
        return future

    if grouped:
        net.register_comm_hook(None, timed_all_reduce)

    def update() -> None:
        optimizer.zero_grad()
        F.cross_entropy(net(xb), yb).backward()
        optimizer.step()

    def timed(step: Callable[[], Any]) -> tuple[float, float]:
        """(seconds per step, seconds in the all-reduce hook per step) over ``updates`` steps."""
        for _ in range(max(updates // 5, 1)):  # warm-up
            step()
        if grouped:
            dist.barrier()
        spent.clear()
        start = time.perf_counter()
        for _ in range(updates):
            step()
        return (time.perf_counter() - start) / updates, sum(spent) / updates

    rows = []
    for _ in range(rounds):  # interleaved, so that a burst of load hits both alike
        update_s, allreduce_s = timed(update)
        alone = timed(lambda: dist.all_reduce(buffer))[0] if grouped else 0.0
        rows.append((update_s, allreduce_s, update_s - allreduce_s, alone))
    middle = sorted(rows)[len(rows) // 2]  # the round with the median update time, its split kept
    keys = ("update_s", "allreduce_s", "compute_s", "buffer_allreduce_s")
    return {**dict(zip(keys, middle, strict=True)), "bytes": 4.0 * buffer.numel()}


def train_and_time(x: np.ndarray, y: np.ndarray, *, batch_size: int = 32, epochs: int = 2, lr: float = 0.2,
                   seed: int = 0, updates: int = 50) -> dict[str, Any]:
    """Everything notebook 08 asks of each rank, in one launch (each launch costs seconds of start-up):
    :func:`train_ddp` without (``"plain"``) and with BatchNorm (``"batch_norm"``), then
    :func:`time_updates` (``"timing"``)."""
    options = {"batch_size": batch_size, "epochs": epochs, "lr": lr, "seed": seed}
    return {"plain": train_ddp(x, y, **options), "batch_norm": train_ddp(x, y, batch_norm=True, **options),
            "timing": time_updates(x, y, batch_size=batch_size, updates=updates)}


def main(argv: list[str] | None = None) -> int:
    """``torchrun --standalone --nproc-per-node W -m batchlab.distributed``: :func:`train_ddp` on the
    digits on every rank; rank 0 prints the per-rank counts and how well the final weights agree."""
    parser = argparse.ArgumentParser(prog="python -m batchlab.distributed", description=main.__doc__)
    parser.add_argument("--batch-size", type=int, default=32, help="samples per batch on each rank")
    for flag, kind, default in (("--epochs", int, 2), ("--lr", float, 0.2), ("--seed", int, 0)):
        parser.add_argument(flag, type=kind, default=default)
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:
        parser.error("start it with torchrun --standalone --nproc-per-node 2 -m batchlab.distributed "
                     "(or make ddp W=2)")
    from batchlab.arithmetic import per_rank_iterations
    from batchlab.data import load_digits_split

    _pin_gloo_to_loopback()
    dist.init_process_group("gloo", timeout=timedelta(seconds=120))
    try:
        split, options = load_digits_split(), vars(args)
        mine = train_ddp(split.x_train, split.y_train, **options)
        results: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(results, {k: v for k, v in mine.items() if k not in ("orders", "losses")})
        if dist.get_rank() == 0:
            w, n = len(results), split.n_train
            print(f"{w} ranks (gloo, MASTER_ADDR={os.environ.get('MASTER_ADDR')}), N = {n:,} digits, "
                  f"B = {args.batch_size} per rank, global batch {args.batch_size * w}, {args.epochs} epochs")
            print("rank  samples/epoch  with drop_last  iterations/epoch  arithmetic.per_rank_iterations")
            for rank, r in enumerate(results):
                print(f"{rank:>4}  {r['samples']:>13,}  {r['samples_drop_last']:>14,}  {r['iterations']:>16}"
                      f"  {per_rank_iterations(n, args.batch_size, w):>30}")
            ranks = max(float(np.abs(r["weights"] - results[0]["weights"]).max()) for r in results)
            print(f"final weights: largest difference between ranks {ranks:.1e}")
            for accumulate, road in ((False, f"one process, batch {args.batch_size * w}"),
                                     (True, f"one process, {w} batches of {args.batch_size} accumulated")):
                single = train_single(split.x_train, split.y_train, world_size=w, accumulate=accumulate,
                                      **options)
                gap = float(np.abs(single["weights"] - results[0]["weights"]).max())
                print(f"DDP vs {road}: largest weight difference {gap:.1e} "
                      f"({'agree' if gap < 1e-5 else 'DIFFER'} within 1e-5)")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
