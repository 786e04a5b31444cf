"""Fixtures for the browser tests: one headless Chromium and one JupyterLab server per session.

Both servers (JupyterLab, and Voilà for the simulator) serve a temporary copy of the notebooks:
JupyterLab autosaves, and a test must never rewrite the stored notebooks. Each server gets a random
token, binds 127.0.0.1 only, runs with its own empty Jupyter config/data/runtime folders (so nothing
from the user's home leaks in) and is stopped at the end of the session (terminate, then kill).

Set ``BATCHLAB_BROWSER_NOTEBOOKS=/some/folder`` to run the suite against another folder of notebooks
(e.g. a scratch copy with a deliberately broken widget).
"""

from __future__ import annotations

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

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(os.environ.get("BATCHLAB_BROWSER_NOTEBOOKS", REPO / "notebooks")).resolve()
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("BATCHLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT_S = 90.0

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
    """A running Jupyter server: where it listens, its token and the folder it serves."""

    url: str
    token: str
    root: Path
    log: Path

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
        for kernel in self.api("/api/kernels") or []:
            try:
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
            except urllib.error.URLError:
                pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_notebooks(source: Path, target: Path) -> Path:
    """Copy the notebooks folder (without checkpoints) to ``target``; returns ``target``."""
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
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def wait_until_up(server: Server, process: subprocess.Popen) -> None:
    """Poll ``/api/status`` until the server answers; fail with its log if it dies or times out."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log.read_text()[-4000:]}")
        try:
            server.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)  # polling interval while we wait for a condition
    raise RuntimeError(f"server did not answer in {SERVER_START_TIMEOUT_S} s:\n"
                       f"{server.log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop a server we started (its own process group): SIGTERM, then SIGKILL after 15 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def start_server(command: list[str], server: Server, env: dict[str, str]) -> subprocess.Popen:
    """Start a server in its own process group with output to its log; wait until it answers."""
    log = server.log.open("w")
    process = subprocess.Popen(
        command,
        cwd=server.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        wait_until_up(server, process)
    except BaseException:
        stop(process)
        raise
    return process


def allow_root() -> list[str]:
    """Jupyter refuses to run as root without ``--allow-root``."""
    return ["--allow-root"] if os.geteuid() == 0 else []


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """JupyterLab on 127.0.0.1 serving a temporary copy of the notebooks, with a random token."""
    base = tmp_path_factory.mktemp("lab")
    root = copy_notebooks(NOTEBOOKS, base / "notebooks")
    settings = base / "user-settings"
    for name, values in LAB_USER_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(24)
    server = Server(f"http://127.0.0.1:{port}", token, root, base / "lab.log")
    command = [
        str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}", *allow_root(),
    ]
    process = start_server(command, server, isolated_env(base / "home"))
    try:
        yield server
    finally:
        try:
            server.shutdown_kernels()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        stop(process)


@pytest.fixture(scope="session")
def voila_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Voilà on 127.0.0.1 serving a temporary copy of the notebooks folder, with a random token."""
    base = tmp_path_factory.mktemp("voila")
    root = copy_notebooks(NOTEBOOKS, base / "notebooks")
    port, token = free_port(), secrets.token_hex(24)
    server = Server(f"http://127.0.0.1:{port}", token, root, base / "voila.log")
    command = [
        str(BIN / "voila"), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
        "--Voila.base_url=/", "--Voila.port_retries=0", f"--token={token}",
        f"--Voila.root_dir={root}", "--VoilaConfiguration.show_tracebacks=True", *allow_root(),
    ]
    process = start_server(command, server, isolated_env(base / "home"))
    try:
        yield server
    finally:
        try:
            server.shutdown_kernels()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session (each test opens its own context: fresh cookies)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run `make browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh page in a fresh context, sized like a laptop screen; closed after the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Folder for full-page screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
