"""The environment: Binder's environment.yml and the [lab] extra of pyproject.toml agree with
requirements.txt, every import is declared, and nothing needs the network or a GPU at run time.

The scanners (``network_uses``, ``gpu_uses``) are tested on bad snippets first, so that a pass on the
real code means something.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SOURCES = sorted((REPO / "src" / "batchlab").rglob("*.py"))

# requirements.txt name -> environment.yml (conda-forge) name, where they differ.
CONDA_NAMES = {
    "torch": "pytorch-cpu",  # conda-forge's CPU-only PyTorch build
    "matplotlib": "matplotlib-base",  # matplotlib without the Qt GUI backends (leaner image)
}

# The one documented version exception: conda-forge's newest pytorch-cpu is older than PyPI's torch.
VERSION_EXCEPTIONS = {"torch": "2.12.1"}

# In requirements.txt but deliberately not in environment.yml, with the reason.
NOT_ON_BINDER = {
    "pytest": "test runner: Binder sessions run the notebooks, not the test suite",
    "pytest-timeout": "test runner plugin",
    "pytest-xdist": "test runner plugin (parallel workers)",
    "hypothesis": "property tests only",
    "nbval": "notebook tests only",
    "playwright": "browser tests only (and it needs a Chromium that Binder does not have)",
    "ruff": "linter, for developers",
    "import-linter": "checks the package's layers (make lint), for developers",
    "django-static-mathjax": "MathJax for the static site (make site), not for a live session",
}

# In requirements.txt but deliberately not in pyproject's [lab] extra: the tools that test and lint
# (`make test`), and MathJax for the static site (`make site`). A learner's `pip install -e ".[lab]"`
# gets everything `make lab` runs.
NOT_IN_LAB = {"pytest", "pytest-timeout", "pytest-xdist", "hypothesis", "nbval", "playwright", "ruff",
              "import-linter", "django-static-mathjax"}

# Modules imported by the notebooks or the package that come from a dependency of a declared
# package rather than from requirements.txt itself: import name -> (distribution, declared parent).
PROVIDED_BY = {"IPython": ("ipython", "ipywidgets"), "traitlets": ("traitlets", "ipywidgets"),
               "PIL": ("pillow", "matplotlib")}  # PIL: the live views' images (plots/mirror_shapes.py)


def normalize(name: str) -> str:
    """A distribution name in PEP 503 normal form (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(path: Path = REPO / "requirements.txt") -> dict[str, str]:
    """``name==version`` lines of a requirements file -> {normalized name: version}."""
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+\-]+)", line)
        assert match, f"requirements.txt: {line!r} is not an exact pin (name==version)"
        pins[normalize(match[1])] = match[2]
    return pins


def load_environment(path: Path = REPO / "environment.yml") -> dict:
    """environment.yml as a dict."""
    return yaml.safe_load(path.read_text())


def parse_environment(env: dict) -> tuple[dict[str, str], dict[str, str]]:
    """The conda and pip pins of an environment: ({name: version}, {name: version}).

    A conda spec is ``name=version`` or ``name==version``; a pip spec ``name==version``. A spec
    without an exact version maps to "" (so the agreement test reports it as unpinned).
    """
    conda, pip = {}, {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            for spec in item.get("pip", []):
                match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==\s*([^\s;]+))?", spec.strip())
                assert match, f"environment.yml pip entry {spec!r} is not name==version"
                pip[normalize(match[1])] = match[2] or ""
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==?\s*([^\s=<>]+))?", str(item).strip())
        assert match, f"environment.yml entry {item!r} is not name=version"
        conda[normalize(match[1])] = match[2] or ""
    return conda, pip


def split_requirement(spec: str) -> tuple[str, str]:
    """A PEP 508 string ``name==version`` (or just ``name``, ``name>=x``) -> (normalized name,
    exact version or "")."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==\s*([^\s;,]+)|[<>=!~].*)?", spec.strip())
    assert match, f"pyproject.toml: {spec!r} is not a plain requirement"
    return normalize(match[1]), match[2] or ""


def load_pyproject(path: Path = REPO / "pyproject.toml") -> dict:
    """pyproject.toml as a dict."""
    return tomllib.loads(path.read_text())


# ---------------------------------------------------------------------------------------------
# pyproject.toml (the package and its [lab] extra) against requirements.txt
# ---------------------------------------------------------------------------------------------


def test_lab_extra_pins_what_requirements_txt_pins() -> None:
    project = load_pyproject()["project"]
    lab = dict(split_requirement(s) for s in project["optional-dependencies"]["lab"])
    package = dict(split_requirement(s) for s in project["dependencies"])
    requirements = parse_requirements()
    problems = []
    for name, version in requirements.items():
        if name in NOT_IN_LAB:
            assert name not in lab, f"{name} is a developer tool, not for the [lab] extra"
            continue
        found = lab.get(name) or package.get(name)  # torch is pinned in the package itself
        if found != version:
            problems.append(f"{name}: requirements.txt {version}, pyproject.toml {found!r}")
    problems += [f"{name} is in the [lab] extra but not in requirements.txt"
                 for name in lab if name not in requirements]
    problems += [f"{name} is a dependency of the package but not in requirements.txt"
                 for name in package if name not in requirements]
    assert not problems, "\n".join(problems)


def test_package_pins_torch_and_declares_python_and_license() -> None:
    pyproject = load_pyproject()
    project = pyproject["project"]
    package = dict(split_requirement(s) for s in project["dependencies"])
    assert package["torch"] == parse_requirements()["torch"], "torch is pinned in the package itself"
    assert project["requires-python"] == ">=3.11"
    assert project["license"] == "MIT", "an SPDX expression, not the deprecated table"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    setuptools = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools == ["setuptools>=77"], "setuptools 77 is the first to read an SPDX license"


def test_split_requirement_reads_and_rejects() -> None:
    assert split_requirement("Scikit_Learn==1.9.1") == ("scikit-learn", "1.9.1")
    assert split_requirement("ipywidgets>=8") == ("ipywidgets", "")
    assert split_requirement("tqdm") == ("tqdm", "")
    with pytest.raises(AssertionError, match="not a plain requirement"):
        split_requirement("numpy @ https://example.org/numpy.whl")


# ---------------------------------------------------------------------------------------------
# environment.yml against requirements.txt
# ---------------------------------------------------------------------------------------------


def test_environment_uses_conda_forge_only_and_python_311() -> None:
    env = load_environment()
    assert env["channels"] == ["conda-forge"]
    conda, _ = parse_environment(env)
    assert conda.get("python") == "3.11"
    assert "pip" in conda, "the pip section needs pip itself in the conda dependencies"


def test_every_requirement_is_in_environment_yml_with_the_same_version() -> None:
    conda, pip = parse_environment(load_environment())
    problems = []
    for name, version in parse_requirements().items():
        if name in NOT_ON_BINDER:
            continue
        conda_name = CONDA_NAMES.get(name, name)
        found = conda.get(conda_name, pip.get(name))
        expected = VERSION_EXCEPTIONS.get(name, version)
        if found is None:
            problems.append(f"{name}=={version} is missing from environment.yml")
        elif found != expected:
            problems.append(f"{name}: requirements.txt {version}, environment.yml {found!r} "
                            f"(expected {expected})")
    assert not problems, "\n".join(problems)


def test_environment_yml_has_nothing_requirements_txt_lacks() -> None:
    conda, pip = parse_environment(load_environment())
    declared = set(parse_requirements())
    from_conda = {CONDA_NAMES.get(n, n): n for n in declared}  # conda name -> requirements name
    extra = [n for n in conda if n not in ("python", "pip") and n not in from_conda]
    extra += [n for n in pip if n not in declared]
    assert not extra, f"environment.yml pins packages that requirements.txt does not: {extra}"


def test_excluded_packages_really_are_in_requirements_and_not_on_binder() -> None:
    conda, pip = parse_environment(load_environment())
    declared = parse_requirements()
    for name in NOT_ON_BINDER:
        assert name in declared, f"{name} is listed as excluded but is not in requirements.txt"
        assert name not in conda and name not in pip, f"{name} is excluded but in environment.yml"


def test_torch_is_pinned_in_both_and_the_exception_is_documented() -> None:
    requirements = parse_requirements()
    conda, pip = parse_environment(load_environment())
    assert re.fullmatch(r"\d+\.\d+\.\d+", requirements["torch"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", conda["pytorch-cpu"])
    assert "torch" not in pip and "pytorch" not in conda, "only the CPU build, and only once"
    text = (REPO / "environment.yml").read_text()
    assert conda["pytorch-cpu"] in text and "exception" in text


def test_postbuild_installs_batchlab_without_dependencies() -> None:
    post_build = REPO / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable"
    assert re.search(r"pip install\b.*--no-deps\b.*-e \.", post_build.read_text())


def test_parsers_reject_bad_pins(tmp_path: Path) -> None:
    bad = tmp_path / "requirements.txt"
    bad.write_text("numpy>=2\n")
    with pytest.raises(AssertionError, match="not an exact pin"):
        parse_requirements(bad)
    conda, pip = parse_environment({"dependencies": ["numpy", {"pip": ["tqdm"]}]})
    assert conda == {"numpy": ""} and pip == {"tqdm": ""}


# ---------------------------------------------------------------------------------------------
# Imports
# ---------------------------------------------------------------------------------------------


def code_cells(path: Path) -> list[str]:
    """The source of each code cell of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def strip_magics(source: str) -> str:
    """Python source of a cell with IPython magics (``%``, ``%%``) and shell lines (``!``) blanked."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def parse_cell(source: str, where: str) -> ast.Module:
    """Parse a cell (magics stripped); a cell that is not Python fails with its location."""
    try:
        return ast.parse(strip_magics(source))
    except SyntaxError as exc:
        pytest.fail(f"{where}: not valid Python after stripping magics: {exc}")


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level names of the absolute imports in a syntax tree (``from a.b import c`` -> ``a``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def undeclared(modules: set[str]) -> list[str]:
    """Modules that are neither stdlib, batchlab, in requirements.txt nor in PROVIDED_BY."""
    declared = set(parse_requirements())
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(modules):
        if module in sys.stdlib_module_names or module == "batchlab" or module in PROVIDED_BY:
            continue
        dists = {normalize(d) for d in distributions.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} (distribution {sorted(dists)})")
    return missing


def notebook_imports() -> dict[str, set[str]]:
    """Notebook name -> the modules its code cells import."""
    result = {}
    for path in NOTEBOOKS:
        modules: set[str] = set()
        for index, source in enumerate(code_cells(path)):
            modules |= imported_modules(parse_cell(source, f"{path.name} code cell {index}"))
        result[path.name] = modules
    return result


def test_strip_magics_and_import_scan() -> None:
    tree = parse_cell("%matplotlib inline\nimport numpy as np\nfrom sklearn.datasets import x\n"
                      "!pip list\nfrom . import y\n", "snippet")
    assert imported_modules(tree) == {"numpy", "sklearn"}
    assert undeclared({"numpy", "sklearn", "json", "batchlab", "IPython"}) == []
    assert undeclared({"pandas", "yaml"}) == [
        "pandas (distribution ['pandas'])",
        "yaml (distribution ['pyyaml'])",
    ]


def test_every_notebook_import_is_declared() -> None:
    assert NOTEBOOKS, "no notebooks found"
    problems = {name: bad for name, mods in notebook_imports().items() if (bad := undeclared(mods))}
    assert not problems, f"imports not declared in requirements.txt: {problems}"


def test_every_package_import_is_declared() -> None:
    modules = set()
    for path in SOURCES:
        modules |= imported_modules(ast.parse(path.read_text(), str(path)))
    assert not undeclared(modules), f"src/batchlab imports undeclared modules: {undeclared(modules)}"


def test_provided_by_really_is_a_dependency_of_a_declared_package() -> None:
    declared = parse_requirements()
    for module, (dist, parent) in PROVIDED_BY.items():
        assert parent in declared, f"{module}: {parent} is not in requirements.txt"
        requires = [normalize(re.split(r"[\s;<>=!~\[]", r, maxsplit=1)[0])
                    for r in importlib.metadata.requires(parent) or [] if "extra ==" not in r]
        assert dist in requires, f"{parent} does not depend on {dist}: declare it instead"


# ---------------------------------------------------------------------------------------------
# No network, no GPU needed at run time
# ---------------------------------------------------------------------------------------------

NETWORK_MODULES = {"requests", "httpx", "aiohttp", "urllib3", "socket", "ftplib", "smtplib",
                   "http", "webbrowser"}
NETWORK_CALLS = re.compile(
    r"\b(urlopen|urlretrieve|fetch_\w+|load_dataset|from_pretrained|hf_hub_download|"
    r"download_url|snapshot_download|load_state_dict_from_url|get_file)\s*\("
    r"|\btorch\.hub\.|\bdownload\s*=\s*True"
)
SHELL_NETWORK = re.compile(r"^\s*[!%]{1,2}\s*(pip|conda|mamba|wget|curl|git)\b", re.MULTILINE)


def network_uses(source: str, tree: ast.AST) -> list[str]:
    """Things in a piece of code that would reach the network at run time."""
    found = [f"import {m}" for m in imported_modules(tree) if m in NETWORK_MODULES]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "urllib.request":
            found.append("from urllib.request import ...")
        if isinstance(node, ast.Import) and any(a.name == "urllib.request" for a in node.names):
            found.append("import urllib.request")
    code = ast.unparse(tree)  # comments and docstrings that merely mention a word do not count
    found += [m.group(0) for m in NETWORK_CALLS.finditer(code)]
    found += [m.group(0).strip() for m in SHELL_NETWORK.finditer(source)]
    return found


GPU_ONLY_DEVICES = re.compile(r"^(cuda|mps)(:\d+)?$")
ALLOWED_TORCH_CUDA = {"is_available", "device_count", "is_built"}
GUARD = re.compile(r"cuda|mps|is_available|\.type\b|device_count")


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True if ``node`` sits in the body of an ``if`` (or a conditional expression) whose test
    checks the device (mentions cuda/mps, ``is_available``, ``device.type``...)."""
    child = node
    while child in parents:
        parent = parents[child]
        if isinstance(parent, ast.If) and child in parent.body and GUARD.search(
                ast.unparse(parent.test)):
            return True
        if isinstance(parent, ast.IfExp) and child is parent.body and GUARD.search(
                ast.unparse(parent.test)):
            return True
        child = parent
    return False


def gpu_uses(tree: ast.AST) -> list[str]:
    """GPU-only operations not guarded by a device check: ``x.cuda()``, ``torch.cuda.*()`` (except
    ``is_available``...), ``torch.mps.*()``, and ``"cuda"``/``"mps"`` passed as an argument."""
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        gpu_only = func.endswith(".cuda") or (
            re.match(r"torch\.(cuda|mps)\.", func)
            and func.rsplit(".", 1)[-1] not in ALLOWED_TORCH_CUDA
        )
        # a GPU device named as a literal: device="cuda", x.to("cuda"), torch.device("mps")...
        takes_device = func.endswith((".to", "device"))
        args = [k.value for k in node.keywords if k.arg == "device"]
        args += node.args if takes_device else []
        gpu_only = gpu_only or any(
            isinstance(a, ast.Constant) and isinstance(a.value, str)
            and GPU_ONLY_DEVICES.match(a.value) for a in args
        )
        if gpu_only and not _guarded(node, parents):
            found.append(ast.unparse(node))
    return found


def test_scanners_catch_network_and_unguarded_gpu_use() -> None:
    bad = ("import requests\nfrom urllib.request import urlopen\n"
           "X = fetch_openml('mnist')\nds = MNIST('.', download=True)\n"
           "model.cuda()\nx = x.to('cuda')\ntorch.cuda.synchronize()\n"
           "train(model, data, device='mps')\nd = resolve_device('cuda')\n")
    tree = ast.parse(bad)
    assert len(network_uses(bad, tree)) == 4
    assert network_uses("!pip install foo\n", ast.parse("")) == ["!pip"]
    assert len(gpu_uses(tree)) == 5
    good = ("# nothing is downloaded here\nimport numpy\n"
            "if torch.cuda.is_available():\n    model.cuda()\n"
            "if device.type == 'cuda':\n    torch.cuda.synchronize(device)\n"
            "elif device.type == 'mps':\n    torch.mps.synchronize()\n"
            "d = 'cuda' if torch.cuda.is_available() else 'cpu'\nt = x.to(d)\n"
            "mps = getattr(torch.backends, 'mps', None)\nok = name.startswith('cuda')\n")
    assert network_uses(good, ast.parse(good)) == []
    assert gpu_uses(ast.parse(good)) == []
    wrong_branch = "if device.type == 'cuda':\n    pass\nelse:\n    torch.cuda.synchronize()\n"
    assert gpu_uses(ast.parse(wrong_branch)) == ["torch.cuda.synchronize()"]


def code_units() -> list[tuple[str, str, ast.AST]]:
    """(where, source, tree) for every module of src/batchlab and every notebook code cell."""
    units = [(str(p.relative_to(REPO)), p.read_text(), ast.parse(p.read_text())) for p in SOURCES]
    for path in NOTEBOOKS:
        for index, source in enumerate(code_cells(path)):
            where = f"{path.name} code cell {index}"
            units.append((where, source, parse_cell(source, where)))
    return units


# batchlab.distributed opens sockets for the process group of notebook 08, on the loopback address only.
LOOPBACK_ONLY = {"src/batchlab/distributed.py"}


def loopback_only(tree: ast.AST) -> bool:
    """Whether every address literal in ``tree`` is the loopback address 127.0.0.1."""
    addresses = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str) and re.fullmatch(r"[\d.]{7,15}|::|localhost", node.value)]
    return bool(addresses) and set(addresses) == {"127.0.0.1"}


def test_nothing_needs_the_network() -> None:
    problems = {}
    for where, source, tree in code_units():
        found = network_uses(source, tree)
        if where in LOOPBACK_ONLY and loopback_only(tree):
            found = [f for f in found if f != "import socket"]
        if found:
            problems[where] = found
    assert not problems, f"network access at run time: {problems}"


def test_loopback_only_refuses_another_address() -> None:
    assert loopback_only(ast.parse('s.bind(("127.0.0.1", 0))'))
    assert not loopback_only(ast.parse('s.bind(("0.0.0.0", 0))'))
    assert not loopback_only(ast.parse('s.bind(("127.0.0.1", 0)); t.connect(("10.0.0.2", 80))'))


def test_nothing_needs_a_gpu() -> None:
    problems = {where: found for where, _, tree in code_units() if (found := gpu_uses(tree))}
    assert not problems, f"GPU-only calls without a device check: {problems}"


# ---------------------------------------------------------------------------------------------
# The Makefile's choice of PyTorch build (CPU wheel index on a Linux machine without an NVIDIA GPU)
# ---------------------------------------------------------------------------------------------

CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def setup_commands(*overrides: str) -> list[str]:
    """The commands ``make setup`` would run (``make -n -B``), with variables overridden."""
    result = subprocess.run(["make", "-n", "-B", "setup", *overrides], cwd=REPO, capture_output=True,
                            text=True, check=True)
    return result.stdout.splitlines()


def torch_install(commands: list[str]) -> str:
    """The one command that installs torch (before the rest of requirements.txt)."""
    found = [c for c in commands if re.search(r"pip install .*torch==", c)]
    assert len(found) == 1, f"expected one torch install command, got {found}"
    requirements = next(i for i, c in enumerate(commands) if "-r requirements.txt" in c)
    assert commands.index(found[0]) < requirements, "torch must be installed before the rest"
    assert CPU_INDEX not in commands[requirements], "the rest must not ask the CPU index"
    return found[0]


@pytest.mark.parametrize(
    ("overrides", "local_first", "cpu_index"),
    [
        (("UNAME=Linux", "NVIDIA="), True, True),  # a Linux laptop without a GPU: CPU build
        (("UNAME=Linux", "NVIDIA=yes"), True, False),  # an NVIDIA machine: the default (CUDA) build
        (("UNAME=Darwin", "NVIDIA="), True, False),  # macOS: PyPI's wheel is the CPU/MPS build
        (("TORCH=cpu", "UNAME=Linux", "NVIDIA=yes"), True, True),  # forced CPU build
        (("TORCH=cuda", "UNAME=Linux", "NVIDIA="), False, False),  # forced default (CUDA) build
    ],
)
def test_make_setup_chooses_the_torch_build(overrides, local_first, cpu_index) -> None:
    command = torch_install(setup_commands(*overrides))
    pin = parse_requirements()["torch"]
    assert f"torch=={pin}" in command
    local, _, remote = command.rpartition("||")
    # what is installed or lies on disk comes first, without any index; the index only after that
    assert ("--no-index" in local and "--no-index" not in remote) == local_first, command
    assert (CPU_INDEX in remote) == cpu_index, command
    assert CPU_INDEX not in local


def test_make_setup_falls_back_to_the_index_only_when_nothing_local_fits(tmp_path: Path) -> None:
    """Run the real recipe with a stand-in for the venv's python that records each pip call: with
    torch available locally the CPU index is never asked; without it, it is."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n'
                    'case "$*" in *--no-index*) exit "${FAKE_NO_LOCAL_TORCH:-0}";; esac\n')
    fake.chmod(0o755)
    for missing, asks_index in [("0", False), ("1", True)]:
        log.write_text("")
        venv = tmp_path / f"venv{missing}"
        subprocess.run(["make", "-B", "setup", f"PY={fake}", f"VENV={venv}", "UNAME=Linux",
                        "NVIDIA="], cwd=REPO, check=True, capture_output=True,
                       env={**os.environ, "FAKE_NO_LOCAL_TORCH": missing})
        calls = log.read_text().splitlines()
        torch_calls = [c for c in calls if "torch==" in c]
        assert "--no-index" in torch_calls[0]
        assert (len(torch_calls) == 2 and CPU_INDEX in torch_calls[1]) == asks_index, calls
        assert (venv / ".batchlab-installed").exists()


# ---------------------------------------------------------------------------------------------
# make app: Voilà on 127.0.0.1 with a token, as make lab (JupyterLab makes one by default)
# ---------------------------------------------------------------------------------------------


def test_make_app_serves_on_loopback_with_a_token(tmp_path: Path) -> None:
    """The command ``make app`` runs (on a free port instead of 8866): it prints a URL with a random
    token, and a request without it gets the login page, not the app."""
    import shlex
    import socket
    import time
    import urllib.error
    import urllib.request

    lines = subprocess.run(["make", "-n", "app"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.replace("\\\n", " ").splitlines()
    command = next(line for line in lines if "voila " in line)
    assert "--Voila.ip=127.0.0.1" in command and re.search(r"--token(\s|$)", command), command
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [re.sub(r"^--port=\d+$", f"--port={port}", part) for part in shlex.split(command)]
    env = {**os.environ}
    while "=" in argv[0]:  # NAME=value before the command: the environment make gives it
        name, _, value = argv.pop(0).partition("=")
        env[name] = str(REPO / value)
    argv[0] = str(REPO / argv[0])
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name)
    log = tmp_path / "voila.log"
    with log.open("w") as out:
        server = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not re.search(rf"http://127\.0\.0\.1:{port}/\?token=[0-9a-f]{{32,}}", log.read_text()):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.25)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.build_opener(NoRedirect).open(f"http://127.0.0.1:{port}/", timeout=30)
        assert refused.value.code == 302 and refused.value.headers["Location"].startswith("/login")
    finally:
        server.terminate()
        server.wait(timeout=30)
