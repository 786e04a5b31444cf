"""Start and stop the JupyterLab and Voilà servers the browser tests talk to.

Each server binds 127.0.0.1 only, on a free port, with a random token; serves a temporary copy of
the notebooks (JupyterLab autosaves, and a test must never rewrite the stored notebooks); runs with
its own empty Jupyter config/data/runtime and IPython folders (nothing from the user's home leaks in);
and runs in its own process group, stopped at the end (SIGTERM, then SIGKILL): no stray processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 90.0

# JupyterLab user settings for the test server: no news/update toast, and every cell kept in the
# DOM (no windowing), so that prompts, outputs and screenshots cover the whole notebook.
LAB_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass(frozen=True)
class Server:
    """A running server: where it listens, its token, the folder it serves and its log file."""

    url: str
    token: str
    root: Path
    log: Path
    probe: str = "/api/status"  # a cheap path that answers once the server is up

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API; returns the decoded JSON (None for an empty reply)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel the server runs (frees the memory a finished notebook holds)."""
        with contextlib.suppress(OSError, ValueError):
            for kernel in self.api("/api/kernels") or []:
                with contextlib.suppress(OSError):
                    self.api(f"/api/kernels/{kernel['id']}", method="DELETE")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_notebooks(source: Path, target: Path) -> Path:
    """Copy a notebooks folder (without checkpoints) to ``target``; returns ``target``."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return target


def isolated_env(home: Path) -> dict[str, str]:
    """Environment for a server: the venv's tools first, and Jupyter/IPython state under ``home``."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg; the notebooks choose their own backend
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for name, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ]:
        folder = home / sub
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    return env


def allow_root() -> list[str]:
    """Jupyter refuses to run as root without ``--allow-root``."""
    return ["--allow-root"] if os.geteuid() == 0 else []


def wait_until_up(server: Server, process: subprocess.Popen) -> None:
    """Poll ``server.probe`` until the server answers; fail with its log if it dies or times out.

    Any HTTP reply counts (Voilà has no ``/api/status``; a 404 from it still means it is up).
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log_tail()}")
        try:
            server.api(server.probe)
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)  # polling interval while we wait for a condition
    raise RuntimeError(f"server did not answer in {START_TIMEOUT_S} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen) -> None:
    """Stop a server we started (its own process group): SIGTERM, then SIGKILL after 15 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@contextlib.contextmanager
def running(command: list[str], server: Server, env: dict[str, str]) -> Iterator[Server]:
    """Run a server for the duration of a ``with`` block; its output goes to ``server.log``."""
    with server.log.open("w") as log:
        process = subprocess.Popen(
            command, cwd=server.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_until_up(server, process)
        yield server
    finally:
        if process.poll() is None:
            server.shutdown_kernels()
        stop(process)


@contextlib.contextmanager
def jupyterlab(notebooks: Path, workdir: Path) -> Iterator[Server]:
    """JupyterLab serving a copy of ``notebooks``, with test settings of its own."""
    root = copy_notebooks(notebooks, workdir / "notebooks")
    settings = workdir / "user-settings"
    for name, values in LAB_USER_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(24)
    server = Server(f"http://127.0.0.1:{port}", token, root, workdir / "lab.log")
    command = [
        str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the tests read kernel states
        *allow_root(),
    ]
    with running(command, server, isolated_env(workdir / "home")) as up:
        yield up


@contextlib.contextmanager
def voila(notebook: Path, workdir: Path, cull_idle_s: int = 600) -> Iterator[Server]:
    """Voilà serving one notebook (a copy), as ``make app`` does, with a token; a kernel idle for
    ``cull_idle_s`` seconds is shut down (``make app``: 600)."""
    root = copy_notebooks(notebook.parent, workdir / "notebooks")
    port, token = free_port(), secrets.token_hex(24)
    server = Server(
        f"http://127.0.0.1:{port}", token, root, workdir / "voila.log", probe="/voila/static/"
    )
    command = [
        str(BIN / "voila"), str(root / notebook.name), "--template=batchlab-app", "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1", "--Voila.base_url=/", "--Voila.port_retries=0",
        f"--token={token}", "--show_tracebacks=True",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_s}", "--MappingKernelManager.cull_interval=5",
    ]
    env = {**isolated_env(workdir / "home"), "JUPYTER_PATH": str(root / "share" / "jupyter")}
    with running(command, server, env) as up:
        yield up
