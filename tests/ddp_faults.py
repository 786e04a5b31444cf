"""Rank functions that misbehave, for tests/test_distributed.py: the launcher's ranks import them by
name (spawn), so they live in a module, not in the test file's functions."""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.distributed as dist


def one_rank_raises(bad_rank: int, late: bool = False) -> int:
    """``bad_rank`` raises ValueError; the others all-reduce (and wait there for it). ``late``: the
    others first finish and wait in the launcher's barrier, then ``bad_rank`` raises."""
    rank = dist.get_rank()
    if rank == bad_rank:
        if late:
            time.sleep(1.0)
        raise ValueError(f"rank {rank} raises on purpose")
    if not late:
        dist.all_reduce(torch.ones(1))
    return rank


def one_rank_exits(bad_rank: int, code: int = 0, hard: bool = False) -> int:
    """``bad_rank`` leaves early with exit code ``code`` (``sys.exit``, or ``os._exit`` when ``hard``);
    the others wait for it in an all-reduce."""
    rank = dist.get_rank()
    if rank == bad_rank:
        if hard:
            os._exit(code)
        sys.exit(code)
    dist.all_reduce(torch.ones(1))
    return rank


def listen_a_while(seconds: float) -> int:
    """Every rank joins one all-reduce, then waits ``seconds`` (time to list the sockets)."""
    dist.all_reduce(torch.ones(1))
    time.sleep(seconds)
    return dist.get_rank()
