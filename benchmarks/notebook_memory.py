"""Peak memory of each notebook: run it top to bottom in a fresh kernel and measure the kernel.

Binder gives a session about 2 GB of RAM; the target is under 1 GB per notebook (kernel peak RSS).

Each notebook runs in a separate runner process (this script with ``--one``), which executes it with
nbclient in a fresh kernel. Two measurements of the kernel:

* ``peak`` -- the exact high-water mark: once the kernel has exited, ``getrusage(RUSAGE_CHILDREN)``
  in the runner gives the largest resident set of its children, i.e. of that kernel;
* ``sampled`` -- psutil samples of the kernel's RSS every 20 ms (a cross-check of the above).

Usage::

    .venv/bin/python benchmarks/notebook_memory.py                 # every notebook
    .venv/bin/python benchmarks/notebook_memory.py notebooks/03_*.ipynb --limit-mb 1024

Prints one line per notebook and a Markdown table; exits 1 if a notebook's peak passes the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def run_one(path: Path, timeout_s: int) -> dict[str, float]:
    """Execute one notebook in a fresh kernel (in this process); return its memory and time.

    Must run in a process of its own: ``RUSAGE_CHILDREN`` covers every child this process waited
    for, so only the one kernel may be among them.
    """
    import nbformat
    import psutil
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    peak_sampled = 0
    stop = threading.Event()

    def sample(pid: int) -> None:
        nonlocal peak_sampled
        try:
            process = psutil.Process(pid)
            while not stop.is_set():
                peak_sampled = max(peak_sampled, process.memory_info().rss)
                stop.wait(0.02)
        except psutil.NoSuchProcess:
            pass

    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
        sampler.start()
        client.execute_managed = True
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
    # setup_kernel's exit shut the kernel down and waited for it: its peak is now in the rusage.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"peak_mib": peak_kib * 1024 / MIB, "sampled_mib": peak_sampled / MIB,
            "seconds": seconds}


def measure(path: Path, timeout_s: int) -> dict[str, float]:
    """Run ``run_one`` for a notebook in a fresh runner process; return its JSON result."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the notebooks choose their backend (%matplotlib inline)
    done = subprocess.run(
        [sys.executable, __file__, "--one", str(path), "--timeout", str(timeout_s)],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((REPO / "notebooks").glob("*.ipynb")))
    parser.add_argument("--limit-mb", type=float, default=1024.0,
                        help="fail if a kernel's peak RSS passes this many MiB (default 1024)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one is not None:  # runner mode: one notebook, one JSON line
        print(json.dumps(run_one(args.one.resolve(), args.timeout)))
        return 0

    rows = []
    for path in args.notebooks:
        result = measure(path.resolve(), args.timeout)
        rows.append((path.name, result))
        print(f"{path.name:40s} peak {result['peak_mib']:7.0f} MiB  (sampled "
              f"{result['sampled_mib']:5.0f} MiB)  run {result['seconds']:6.1f} s", flush=True)

    print("\n| notebook | kernel peak RSS (MiB) | run time (s) |\n| --- | ---: | ---: |")
    for name, result in rows:
        print(f"| {name} | {result['peak_mib']:.0f} | {result['seconds']:.1f} |")
    over = [name for name, result in rows if result["peak_mib"] > args.limit_mb]
    if over:
        print(f"\nover the {args.limit_mb:.0f} MiB limit: {', '.join(over)}")
        return 1
    print(f"\nall under the {args.limit_mb:.0f} MiB limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
