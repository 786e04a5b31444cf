"""Data parallelism for real: W processes train one model with PyTorch's distributed engine (``gloo``).

One training function, :func:`train_ddp`, runs on every rank. Two ways start it:

* from a notebook or a script, :func:`launch` starts W processes with ``torch.multiprocessing``
  (start method "spawn": each process imports the function by name, so it must live in a module such
  as this one, not in a notebook cell), joins them into a process group over 127.0.0.1 and returns
  what the function returned on each rank, in rank order;
* from a terminal, ``python -m batchlab.distributed --world-size 2`` (``make ddp W=2``) does the same
  through :func:`launch`; under ``torchrun --standalone --nproc-per-node 2 -m batchlab.distributed``,
  :func:`main` runs on each of the processes torchrun starts.

:func:`train_single` is the one-process reference: the same sample order, taken either as one batch
of B·W or as W batches of B whose gradients are accumulated exactly. :func:`time_updates` splits the
time of an update into compute and all-reduce.

Safe to use from a notebook: :func:`launch` turns a rank that raises into one ``RuntimeError`` (the
error the function raised on the rank that failed first, with its traceback, not the "connection
closed" its peers see), stops the other ranks (which would otherwise wait in a collective),
gives up after ``timeout`` seconds, and leaves no process running after success, failure or a keyboard
interrupt. Nothing listens beyond 127.0.0.1: rank 0 opens the rendezvous socket itself on 127.0.0.1
(``TCPStore`` given a host would listen on every interface), and ``gloo`` is pinned to the loopback
interface (``GLOO_SOCKET_IFNAME`` is set to it on every rank, whatever the environment said).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import shutil
import socket
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from batchlab.models import make_mlp
from batchlab.validation import require_bool, require_float, require_int, require_positive_float

__all__ = ["accumulate_and_evaluate", "check_world_size", "evaluate_ddp", "free_port", "launch", "main",
           "max_world_size", "pin_gloo_to_loopback", "time_updates", "train_accumulated_ddp",
           "train_and_time", "train_ddp", "train_single"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the operating system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LOOPBACK_NAMES = ("lo", "lo0")  # the loopback interface on Linux, and on macOS and the BSDs
MAX_TIMEOUT_S = 7 * 24 * 3600.0  # a week, far beyond any run here (1e15 s overflowed timedelta)
GRACE_S = 5.0  # after a failure, seconds the other ranks get to end (and say why) before SIGTERM
RANK_MEMORY_BYTES = 250 * 2**20  # about what one rank needs (Python, torch, the digits, a small MLP)
# Errors a rank gets because a peer went away: never the cause when a peer reported its own error.
_PEER_ERROR_WORDS = ("connection closed by peer", "connection reset by peer", "broken pipe",
                     "connection refused", "socket timeout", "timed out", "timeout")


def _loopback_name() -> str | None:
    """The loopback interface's name (``lo`` or ``lo0``), or None where the system names none."""
    names = {name for _, name in socket.if_nameindex()} if hasattr(socket, "if_nameindex") else set()
    return next((name for name in LOOPBACK_NAMES if name in names), None)


def pin_gloo_to_loopback() -> None:
    """Make gloo listen on the loopback interface only, whatever ``GLOO_SOCKET_IFNAME`` said before (it
    otherwise uses the host name's address, or the interface the environment names). Every rank of
    :func:`launch` calls it; call it yourself before ``init_process_group`` in a process you start.
    Taught in: notebook 08 (a failing rank and a hung rank)."""
    name = _loopback_name()
    if name is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = name


def max_world_size() -> int:
    """The most ranks :func:`launch` starts without ``oversubscribe=True``: one per CPU core this process
    may use, and no more than the available memory holds at about 250 MB a rank; at least 2 (the
    smallest group, allowed even on one core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    memory = _available_memory()
    by_memory = cores if memory is None else memory // RANK_MEMORY_BYTES
    return max(2, min(cores, by_memory))


def _available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux's MemAvailable; psutil elsewhere, if
    installed), or None when unknown."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def check_world_size(world_size: Any, oversubscribe: bool = False) -> int:
    """Return ``world_size`` if :func:`launch` may start that many ranks on this machine.

    Raises ``TypeError`` for a non-integer and ``ValueError`` below 1, above 64, or above
    :func:`max_world_size` (the cores, and the memory at about 250 MB a rank) unless ``oversubscribe``
    is True: more ranks than cores share them and run slower, and too many exhaust the memory.
    """
    world_size = require_int("world_size", world_size, minimum=1, maximum=64)
    if not require_bool("oversubscribe", oversubscribe) and world_size > (limit := max_world_size()):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        memory = _available_memory()
        room = "" if memory is None else f" and {memory / 2**30:.1f} GiB of available memory"
        raise ValueError(f"world_size must be <= {limit} on this machine ({cores} CPU cores{room}, about "
                         f"{RANK_MEMORY_BYTES // 2**20} MB a rank), got {world_size}; pass "
                         "oversubscribe=True (--oversubscribe) to start more ranks than that anyway")
    return world_size


def _record(folder: str, rank: int, error: BaseException) -> None:
    """Leave this rank's error in ``rank{rank}.error`` (its time, one line, the traceback), before the
    process group is torn down: the peers' "connection closed" errors can only come after it."""
    when = time.monotonic()  # one clock for every process of this machine
    if isinstance(error, SystemExit):
        line = (f"SystemExit: the function called sys.exit({error.code!r}) (or exit()) before returning "
                "a result")
    else:
        line = traceback.format_exception_only(type(error), error)[-1].strip()
    lowered = line.lower()
    peer = isinstance(error, dist.DistError) or any(words in lowered for words in _PEER_ERROR_WORDS)
    record = {"time": when, "line": line, "trace": traceback.format_exc(), "peer": peer}
    path = os.path.join(folder, f"rank{rank}.error")
    with open(path + ".part", "wb") as file:
        pickle.dump(record, file)
    os.replace(path + ".part", path)


def _run_rank(rank: int, world_size: int, port: int, timeout: float, folder: str) -> None:
    """The body of one spawned process: join the group, run the function, leave its result in a file.

    The function and its arguments come from a file too: a large payload written to a process that
    dies while starting would block the parent, and a tensor put on a queue by a process that then
    exits cannot be read by the parent. An error (or a ``sys.exit``) is recorded in a file before the
    group is torn down, so the parent can tell the rank that failed first from the ranks that failed
    because it did.
    """
    open(os.path.join(folder, f"rank{rank}.started"), "w").close()
    grouped = False
    try:
        with open(os.path.join(folder, "call.pickle"), "rb") as file:
            fn, args, kwargs = pickle.load(file)
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
        pin_gloo_to_loopback()
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))  # the ranks share the cores
        listener = socket.create_server(("127.0.0.1", port)) if rank == 0 else None
        store = dist.TCPStore("127.0.0.1", port, world_size, rank == 0, timedelta(seconds=timeout),
                              master_listen_fd=listener.fileno() if listener else None)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout))
        grouped = True
        result = fn(*args, **kwargs)
        dist.barrier()  # no rank leaves (and closes the store) while another still needs it
    except (Exception, SystemExit) as error:
        _record(folder, rank, error)
        if isinstance(error, SystemExit):  # exit code 0 without a result is a failure of this rank
            raise RuntimeError(f"rank {rank} called sys.exit({error.code!r})") from None
        raise
    finally:
        if grouped:
            dist.destroy_process_group()
    path = os.path.join(folder, f"rank{rank}.pickle")
    with open(path + ".part", "wb") as file:
        pickle.dump(result, file)
    os.replace(path + ".part", path)  # the parent never reads half a file


def _read_records(folder: str, world_size: int) -> dict[int, dict[str, Any]]:
    """The errors the ranks recorded (:func:`_record`), by rank."""
    records = {}
    for rank in range(world_size):
        path = os.path.join(folder, f"rank{rank}.error")
        if os.path.exists(path):
            with open(path, "rb") as file:
                records[rank] = pickle.load(file)
    return records


def _blame(folder: str, processes: list, first: int | None) -> str:
    """The failure to report, once every rank has ended: one line naming the rank and what happened,
    then that rank's traceback.

    In this order: the earliest error a rank raised itself (not a peer's "connection closed"); the rank
    seen failing first (``first``) if it recorded nothing (a signal, or an exit while starting); a rank
    that ended with exit code 0 but no result (``os._exit``); the earliest error of any kind.
    """
    world_size = len(processes)
    records = _read_records(folder, world_size)
    own = sorted((r for r in records if not records[r]["peer"]), key=lambda r: records[r]["time"])
    silent = [r for r, p in enumerate(processes) if p.exitcode == 0 and r not in records
              and not os.path.exists(os.path.join(folder, f"rank{r}.pickle"))]
    if own:
        rank = own[0]
    elif first is not None and first not in records:
        rank = first
    elif silent:
        rank = silent[0]
    elif records:
        rank = min(records, key=lambda r: records[r]["time"])
    else:
        rank = first if first is not None else 0
    if rank in records:
        record = records[rank]
        return (f"rank {rank} of {world_size} failed with {record['line']}; the other ranks were "
                f"stopped.\n\nTraceback of rank {rank}:\n{record['trace']}")
    code = processes[rank].exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    if not os.path.exists(os.path.join(folder, f"rank{rank}.started")):
        return (f"rank {rank} of {world_size} ended with {how} while starting, before it could run the "
                "function; the other ranks were stopped. Each rank imports the launching script again: "
                "in a script, call launch only under `if __name__ == \"__main__\":` (the rank's own "
                "message is printed above, on stderr)")
    if code == 0:
        return (f"rank {rank} of {world_size} ended with exit code 0 without returning a result (did "
                "the function call os._exit?); the other ranks were stopped")
    return f"rank {rank} of {world_size} ended with {how}; the other ranks were stopped"


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
           oversubscribe: bool = False, **kwargs: Any) -> list[Any]:
    """Run ``fn(*args, **kwargs)`` on ``world_size`` processes joined in one ``gloo`` process group.

    Each process is a rank: inside ``fn``, ``torch.distributed.get_rank()`` is 0 … W−1 and collectives
    (``all_reduce``, ``DistributedDataParallel``) reach the other ranks. The environment is what
    torchrun sets: ``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``; each rank
    gets ``cpu_count // W`` threads, and gloo uses the loopback interface whatever
    ``GLOO_SOCKET_IFNAME`` says. ``fn`` must be importable (defined in a module, not in a notebook cell)
    and should return plain data (numbers, lists, NumPy arrays). In a script, call ``launch`` under
    ``if __name__ == "__main__":`` (each rank imports the script again).

    ``world_size``: 1 to :func:`max_world_size` (the CPU cores, and the memory at about 250 MB a rank;
    at least 2), up to 64 with ``oversubscribe=True``. ``timeout``: seconds, > 0 and at most a week.

    Returns the W results in rank order. Raises ``RuntimeError`` naming the rank that failed first, with
    the error raised in ``fn`` and its traceback (a rank's own error, not the "connection closed" its
    peers get when it leaves; a rank that calls ``sys.exit``, even ``sys.exit(0)``, before returning
    has failed), or ``TimeoutError`` after ``timeout`` seconds (also the limit of every collective);
    either way, and on a keyboard interrupt, every process is stopped before returning.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__} {fn!r}")
    if getattr(fn, "__module__", None) == "__main__":
        raise TypeError(f"fn must be importable by the spawned processes, but {fn.__name__!r} is defined "
                        "in __main__ (a notebook cell or a script): define it in a module and import it")
    world_size = check_world_size(world_size, oversubscribe)
    timeout = require_float("timeout", timeout, minimum=0, strict_min=True, maximum=MAX_TIMEOUT_S)
    named = os.environ.get("GLOO_SOCKET_IFNAME")
    if named and _loopback_name() not in (None, named):
        warnings.warn(f"GLOO_SOCKET_IFNAME={named} is ignored: the ranks talk over the loopback interface "
                      f"{_loopback_name()} only", RuntimeWarning, stacklevel=2)
    folder = tempfile.mkdtemp(prefix="batchlab-ddp-")
    processes, error_files = [], []
    try:
        with open(os.path.join(folder, "call.pickle"), "wb") as file:
            pickle.dump((fn, args, kwargs), file)  # an argument that cannot be pickled fails here
        context = mp.start_processes(_run_rank, args=(world_size, free_port(), timeout, folder),
                                     nprocs=world_size, join=False, start_method="spawn")
        processes, error_files = context.processes, context.error_files
        deadline = time.monotonic() + timeout
        try:
            # join: True once every rank ended well; on a failure it gives the others GRACE_S to end
            # (the peers of a failed rank fail too, and record why), stops the rest and raises.
            while not context.join(timeout=min(max(deadline - time.monotonic(), 0), 1.0),
                                   grace_period=GRACE_S):
                if time.monotonic() >= deadline:
                    running = [rank for rank, p in enumerate(processes) if p.exitcode is None]
                    raise TimeoutError(f"ranks {running} of {world_size} still running after "
                                       f"timeout={timeout:g} s; every rank was stopped")
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as error:
            raise RuntimeError(_blame(folder, processes, error.error_index)) from None
        results = []
        for rank in range(world_size):
            path = os.path.join(folder, f"rank{rank}.pickle")
            if not os.path.exists(path):
                raise RuntimeError(_blame(folder, processes, None))
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
    rank, world_size = _require_group("train_ddp")
    data = TensorDataset(torch.tensor(x), torch.tensor(y))  # copies: the arrays may be read-only
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
    x, y = torch.tensor(x), torch.tensor(y)
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
            total = sum(len(batch) for batch in group)
            loss = 0.0
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
    xb, yb = torch.tensor(x[:batch_size]), torch.tensor(y[:batch_size])
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
                   seed: int = 0, updates: int = 50, x_eval: np.ndarray | None = None,
                   y_eval: np.ndarray | None = None, accumulation_steps: int = 4) -> dict[str, Any]:
    """Everything notebook 08 asks of each rank, in one launch (each launch costs seconds of start-up):
    :func:`train_ddp` without (``"plain"``) and with BatchNorm (``"batch_norm"``), then
    :func:`time_updates` (``"timing"``). Given an evaluation set ``x_eval``, ``y_eval`` (both or neither),
    also :func:`accumulate_and_evaluate` with ``accumulation_steps`` for one epoch, evaluating the
    ``"plain"`` run's weights (``"practice"``)."""
    if (x_eval is None) != (y_eval is None):
        raise ValueError("x_eval and y_eval must be given together (an evaluation set), or neither")
    options = {"batch_size": batch_size, "epochs": epochs, "lr": lr, "seed": seed}
    plain = train_ddp(x, y, **options)
    results = {"plain": plain, "batch_norm": train_ddp(x, y, batch_norm=True, **options),
               "timing": time_updates(x, y, batch_size=batch_size, updates=updates)}
    if x_eval is not None:
        results["practice"] = accumulate_and_evaluate(
            x, y, x_eval, y_eval, batch_size=batch_size, accumulation_steps=accumulation_steps, epochs=1,
            lr=lr, seed=seed, weights=plain["weights"])
    return results


def _require_group(name: str) -> tuple[int, int]:
    """This process's rank and the world size; a clear error outside a process group."""
    if not dist.is_initialized():
        raise RuntimeError(f"{name} runs inside a process group: start it with launch({name}, W, ...), "
                           "python -m batchlab.distributed or torchrun")
    return dist.get_rank(), dist.get_world_size()


def train_accumulated_ddp(x: np.ndarray, y: np.ndarray, *, batch_size: int = 32, accumulation_steps: int = 4,
                          epochs: int = 1, lr: float = 0.2, seed: int = 0, hidden: int = 64,
                          no_sync: bool = True) -> dict[str, Any]:
    """Exact gradient accumulation under DDP, with or without ``model.no_sync()``, counting the all-reduces.

    Each rank reads its ``DistributedSampler`` shard (``shuffle=True, seed=seed``, ``set_epoch``) in
    batches of ``batch_size`` and makes one update per group of ``accumulation_steps`` batches (A): each
    batch's mean loss is weighted by its share of the group's samples (notebook 05's exact accumulation),
    so an update uses the gradient of the mean loss over the group's samples on all W ranks, B·A·W
    samples. With ``no_sync=True`` the forward and backward passes of the first A − 1 batches of a group
    run inside ``model.no_sync()``: their gradients stay local and only the last backward pass
    all-reduces the sum. With ``no_sync=False`` every backward pass all-reduces. The weights agree either
    way, to float rounding.

    A DDP communication hook (``register_comm_hook``) counts the all-reduce calls and their bytes (the
    gradient buckets, float32: 4 bytes per parameter for a model in one bucket) and then runs PyTorch's
    default ``allreduce_hook``, so the communication itself is unchanged. ``x``: ``(N, 64)`` float32,
    ``y``: ``(N,)`` int64. Returns ``weights`` (float32 vector), ``updates``, ``backward_passes``,
    ``allreduce_calls``, ``allreduce_bytes`` (this rank's, summed over the run) and ``seconds`` (this
    rank's wall-clock time for the training loop, after a barrier).

    Taught in: notebook 08 § Gradient accumulation under DDP: ``no_sync``.
    """
    _check(batch_size, epochs, lr, hidden, False)
    steps = require_int("accumulation_steps", accumulation_steps, minimum=1)
    no_sync = require_bool("no_sync", no_sync)
    rank, world_size = _require_group("train_accumulated_ddp")
    data = TensorDataset(torch.tensor(x), torch.tensor(y))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(data, batch_size=batch_size, sampler=sampler)
    model = DistributedDataParallel(make_mlp(hidden=(hidden,), seed=seed))
    counter = {"calls": 0, "bytes": 0}

    def counting_allreduce(state, bucket):  # no annotations: DDP checks them, and here they are strings
        gradient = bucket.buffer()
        state["calls"] += 1
        state["bytes"] += gradient.numel() * gradient.element_size()
        return allreduce_hook(None, bucket)  # PyTorch's default: average over the ranks, asynchronously

    model.register_comm_hook(counter, counting_allreduce)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    updates = 0
    backward_passes = 0
    dist.barrier()
    start = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        batches = list(loader)
        for first in range(0, len(batches), steps):
            group = batches[first : first + steps]
            samples = sum(len(yb) for _, yb in group)
            optimizer.zero_grad()
            for k, (xb, yb) in enumerate(group):
                last = k == len(group) - 1
                # no_sync must hold the forward pass too: DDP decides in forward whether backward syncs
                with model.no_sync() if no_sync and not last else contextlib.nullcontext():
                    (F.cross_entropy(model(xb), yb) * (len(yb) / samples)).backward()
                backward_passes += 1
            optimizer.step()
            updates += 1
    seconds = time.perf_counter() - start
    return {"weights": parameters_to_vector(model.parameters()).detach().numpy(), "updates": updates,
            "backward_passes": backward_passes, "allreduce_calls": counter["calls"],
            "allreduce_bytes": counter["bytes"], "seconds": seconds}


def evaluate_ddp(x: np.ndarray, y: np.ndarray, *, weights: np.ndarray, hidden: int = 64) -> dict[str, Any]:
    """Accuracy of the digits MLP with ``weights`` on ``(x, y)``, evaluated by W ranks, two ways.

    Each rank evaluates its share from ``DistributedSampler(shuffle=False)`` (``drop_last=False``, the
    default): the sampler pads the index list with repeated samples to W·ceil(N/W), so when W does not
    divide N some samples are evaluated twice. The counts are summed over the ranks with one
    ``all_reduce``:

    * **padded** (the common mistake): every sample the ranks evaluated, duplicates included;
    * **trimmed** (the fix): each rank keeps only its first ``len(range(rank, N, W))`` samples, the ones
      before the padding (with ``drop_last=False`` the padding is the tail of the list, and rank r's
      k-th sample is position r + k·W of it), so every sample counts once.

    ``x``: ``(N, 64)`` float32, ``y``: ``(N,)`` int64, ``weights``: the float32 vector of
    :func:`train_ddp`'s ``weights``. Returns ``n`` (N), ``padded`` (W·ceil(N/W) − N), and ``counted`` and
    ``correct`` for each way, as ``padded_counted``, ``padded_correct``, ``trimmed_counted``,
    ``trimmed_correct`` (numbers of samples, the same on every rank).

    Taught in: notebook 08 § Evaluating under DistributedSampler.
    """
    require_int("hidden", hidden, minimum=1)
    x, y = torch.tensor(x), torch.tensor(y)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must hold the same number of samples (>= 1), got {len(x)} and {len(y)}")
    model = make_mlp(hidden=(hidden,))
    vector = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    expected = sum(p.numel() for p in model.parameters())
    if vector.shape != (expected,):
        raise ValueError(f"weights must be a vector of {expected} numbers (the 64-{hidden}-10 MLP), "
                         f"got shape {tuple(vector.shape)}")
    rank, world_size = _require_group("evaluate_ddp")
    vector_to_parameters(vector, model.parameters())
    model.eval()
    indices = list(DistributedSampler(range(len(y)), num_replicas=world_size, rank=rank, shuffle=False))
    mine = len(range(rank, len(y), world_size))  # this rank's samples before the padding
    with torch.no_grad():
        right = (model(x[indices]).argmax(dim=1) == y[indices]).long()
    counts = torch.tensor([len(indices), int(right.sum()), mine, int(right[:mine].sum())])
    dist.all_reduce(counts)  # summed over the ranks
    padded_counted = int(counts[0])
    padded_correct = int(counts[1])
    trimmed_counted = int(counts[2])
    trimmed_correct = int(counts[3])
    return {"n": len(y), "padded": padded_counted - len(y), "padded_counted": padded_counted,
            "padded_correct": padded_correct, "trimmed_counted": trimmed_counted,
            "trimmed_correct": trimmed_correct}


def accumulate_and_evaluate(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray, *,
                            batch_size: int = 32, accumulation_steps: int = 4, epochs: int = 1,
                            lr: float = 0.2, seed: int = 0, rounds: int = 3,
                            weights: np.ndarray | None = None) -> dict[str, Any]:
    """Notebook 08's practitioner section on each rank, in one launch.

    :func:`train_accumulated_ddp` with (``"no_sync"``) and without (``"sync"``) ``no_sync``, ``rounds``
    times each, taking turns (so that a burst of load hits both); each entry is the first round's result
    with ``seconds`` replaced by the median over the rounds. Then :func:`evaluate_ddp` of ``weights``
    (default: the ``no_sync`` run's) on ``(x, y)`` (``"evaluate_train"``) and on ``(x_eval, y_eval)``
    (``"evaluate_eval"``).

    Taught in: notebook 08 § Gradient accumulation under DDP, § Evaluating under DistributedSampler.
    """
    rounds = require_int("rounds", rounds, minimum=1)
    options = {"batch_size": batch_size, "accumulation_steps": accumulation_steps, "epochs": epochs,
               "lr": lr, "seed": seed}
    runs: dict[str, list[dict[str, Any]]] = {"sync": [], "no_sync": []}
    for _ in range(rounds):
        for name in runs:
            runs[name].append(train_accumulated_ddp(x, y, no_sync=name == "no_sync", **options))
    results = {name: {**done[0], "seconds": float(np.median([r["seconds"] for r in done]))}
               for name, done in runs.items()}
    weights = results["no_sync"]["weights"] if weights is None else weights
    results["evaluate_train"] = evaluate_ddp(x, y, weights=weights)
    results["evaluate_eval"] = evaluate_ddp(x_eval, y_eval, weights=weights)
    return results


def _digits_rank(options: dict[str, Any]) -> dict[str, Any]:
    """One rank of ``python -m batchlab.distributed``: :func:`train_ddp` on the digits, the counts and
    the final weights (the per-update lists stay on the rank)."""
    from batchlab.data import load_digits_split

    split = load_digits_split()
    mine = train_ddp(split.x_train, split.y_train, **options)
    return {k: v for k, v in mine.items() if k not in ("orders", "losses")}


def _report(results: list[dict[str, Any]], options: dict[str, Any], how: str) -> None:
    """Print each rank's counts beside the arithmetic, and how well the weights agree (rank 0 or the
    launching process)."""
    from batchlab.arithmetic import per_rank_iterations
    from batchlab.data import load_digits_split

    split = load_digits_split()
    w = len(results)
    n = split.n_train
    b = options["batch_size"]
    print(f"{w} ranks ({how}, gloo over 127.0.0.1), N = {n:,} digits, B = {b} per rank, global batch "
          f"{b * w}, {options['epochs']} epochs")
    print("rank  samples/epoch  with drop_last  iterations/epoch  arithmetic.per_rank_iterations")
    for rank, r in enumerate(results):
        print(f"{rank:>4}  {r['samples']:>13,}  {r['samples_drop_last']:>14,}  {r['iterations']:>16}"
              f"  {per_rank_iterations(n, b, w):>30}")
    ranks = max(float(np.abs(r["weights"] - results[0]["weights"]).max()) for r in results)
    print(f"final weights: largest difference between ranks {ranks:.1e}")
    for accumulate, road in ((False, f"one process, batch {b * w}"),
                             (True, f"one process, {w} batches of {b} accumulated")):
        single = train_single(split.x_train, split.y_train, world_size=w, accumulate=accumulate, **options)
        gap = float(np.abs(single["weights"] - results[0]["weights"]).max())
        print(f"DDP vs {road}: largest weight difference {gap:.1e} "
              f"({'agree' if gap < 1e-5 else 'DIFFER'} within 1e-5)")


def main(argv: list[str] | None = None) -> int:
    """``python -m batchlab.distributed --world-size W`` (``make ddp W=2``): :func:`launch` starts W ranks
    that run :func:`train_ddp` on the digits, then this process prints the per-rank counts and how well
    the final weights agree. Under ``torchrun --standalone --nproc-per-node W -m batchlab.distributed``
    every rank runs it and rank 0 prints (torchrun's own store listens on every network interface)."""
    parser = argparse.ArgumentParser(prog="python -m batchlab.distributed", description=main.__doc__)
    parser.add_argument("--world-size", type=int, default=2, help="ranks (processes) to start; default 2")
    parser.add_argument("--oversubscribe", action="store_true",
                        help="allow more ranks than CPU cores (or than the memory holds at ~250 MB a rank)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per batch on each rank")
    for flag, kind, default in (("--epochs", int, 2), ("--lr", float, 0.2), ("--seed", int, 0)):
        parser.add_argument(flag, type=kind, default=default)
    args = parser.parse_args(argv)
    options = {"batch_size": args.batch_size, "epochs": args.epochs, "lr": args.lr, "seed": args.seed}
    try:
        _check(options["batch_size"], options["epochs"], options["lr"], 64, False)
        if "RANK" not in os.environ:
            world_size = check_world_size(args.world_size, args.oversubscribe)
    except (TypeError, ValueError) as error:
        parser.error(str(error).replace("world_size", "--world-size").replace("batch_size", "--batch-size"))
    if "RANK" not in os.environ:  # from a terminal: the launcher starts the ranks
        from batchlab import distributed  # the importable copy: under -m this module is __main__

        results = launch(distributed._digits_rank, world_size, options, oversubscribe=args.oversubscribe)
        _report(results, options, "python -m batchlab.distributed")
        return 0
    pin_gloo_to_loopback()  # under torchrun: this process is one rank
    dist.init_process_group("gloo", timeout=timedelta(seconds=120))
    try:
        mine = _digits_rank(options)
        results: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(results, mine)
        if dist.get_rank() == 0:
            _report(results, options, "torchrun")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
