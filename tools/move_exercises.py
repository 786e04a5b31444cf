"""Move a notebook's inline exercises into its data file, out of sight of the notebook's code.

    python tools/move_exercises.py notebooks/04_generalization_gap.ipynb [...]

For each code cell that builds a ``NumericExercise(...)`` or ``ChoiceExercise(...)`` from literals
(strings, numbers, lists, dicts), the exercise's question, answer, explanation and hints are appended to
``src/batchlab/exercise_data/NN.toml`` under the name ``exercise_K`` (K counts the notebook's exercises
from 1), and the cell becomes::

    # goals: 2
    exercises.show("04.exercise_3")

with its outputs cleared (re-execute the notebook afterwards). A cell whose answer is computed in the
notebook (``NumericExercise("...", s64, ...)``) keeps its computation and passes the value on:
``exercises.show("07.exercise_1", answer=s64)``; any other argument that is not a literal leaves the
cell as it is, with a message: move such an exercise by hand, with ``{name}`` fields in the data
file filled from keyword arguments (see ``batchlab.exercises.load``). The notebook's import of
NumericExercise/ChoiceExercise is replaced by ``exercises`` (``from batchlab import exercises``).
Running it twice changes nothing: converted cells have no inline exercise left.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "src" / "batchlab" / "exercise_data"
KINDS = {"NumericExercise": "numeric", "ChoiceExercise": "choice"}
POSITIONAL = {"numeric": ("prompt", "answer"), "choice": ("prompt", "options", "answer")}


def toml_value(value: object) -> str:
    """A TOML value for a str, number, list or dict of them (strings as JSON strings, valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[\n" + "".join(f"    {toml_value(v)},\n" for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def toml_entry(name: str, fields: dict) -> str:
    """One ``[name]`` table, its mappings (mistakes, why_wrong) as sub-tables."""
    lines = [f"[{name}]"]
    tables = {k: v for k, v in fields.items() if isinstance(v, dict)}
    lines += [f"{k} = {toml_value(v)}" for k, v in fields.items() if k not in tables]
    for key, mapping in tables.items():
        lines.append(f"\n[{name}.{key}]")
        lines += [f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}" for k, v in mapping.items()]
    return "\n".join(lines) + "\n"


def exercise_call(tree: ast.Module) -> tuple[ast.stmt, ast.Call] | None:
    """The statement and the call that build the cell's exercise (``X(...)`` or ``name = X(...)``)."""
    for statement in tree.body:
        value = statement.value if isinstance(statement, ast.Assign | ast.Expr) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in KINDS:
            return statement, value
    return None


def arithmetic(node: ast.expr) -> float:
    """The value of a constant arithmetic expression (``27 / 64 * (256 - 64)``); ValueError otherwise."""
    allowed = (ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)
    if not all(isinstance(n, allowed) for n in ast.walk(node)):
        raise ValueError("not constant arithmetic")
    return eval(compile(ast.Expression(node), "<exercise>", "eval"), {"__builtins__": {}})


def literal(node: ast.expr) -> object:
    """A literal (str, number, list, dict) whose numbers may be constant arithmetic."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        if isinstance(node, ast.Dict):
            return {literal(k): literal(v) for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.List | ast.Tuple):
            return [literal(v) for v in node.elts]
        return arithmetic(node)


def fields_of(call: ast.Call) -> tuple[dict, dict[str, str]]:
    """(literal fields, {field: source of a computed value}) of an exercise call."""
    kind = KINDS[call.func.id]
    named = dict(zip(POSITIONAL[kind], call.args, strict=False))
    named.update({k.arg: k.value for k in call.keywords})
    fields, computed = {"kind": kind}, {}
    for key, node in named.items():
        try:
            value = literal(node)
        except ValueError:
            computed[key] = ast.unparse(node)
            continue
        fields[key] = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
    return fields, computed


def convert(path: Path) -> list[str]:
    """Convert one notebook in place; returns what it did, one line per exercise."""
    nb = nbformat.read(path, as_version=4)
    number = path.name[:2]
    data_file = DATA / f"{number}.toml"
    text = data_file.read_text(encoding="utf-8") if data_file.exists() else (
        f"# Notebook {path.name}'s exercises, shown by batchlab.exercises.show(\"{number}.<name>\").\n")
    taken = set(re.findall(r"^\[([\w-]+)\]", text, re.MULTILINE))
    report, count = [], len(taken)
    for cell in nb.cells:
        if cell.cell_type != "code" or not re.search(r"\b(Numeric|Choice)Exercise\(", cell.source):
            continue
        tree = ast.parse(cell.source)
        found = exercise_call(tree)
        if found is None:
            report.append(f"{path.name} cell {cell.get('id')}: no exercise call found, left as it is")
            continue
        statement, call = found
        fields, computed = fields_of(call)
        if set(computed) - {"answer"}:
            report.append(f"{path.name} cell {cell.get('id')}: {sorted(computed)} are computed, "
                          "left as it is")
            continue
        count += 1
        name = f"exercise_{count}"
        while name in taken:
            count += 1
            name = f"exercise_{count}"
        taken.add(name)
        text += "\n" + toml_entry(name, fields)
        lines = cell.source.splitlines()
        before = lines[:statement.lineno - 1]
        after = [line for line in lines[statement.end_lineno:] if not re.fullmatch(r"exercise_\d+", line)]
        argument = f", answer={computed['answer']}" if computed else ""
        cell.source = "\n".join([*before, f'exercises.show("{number}.{name}"{argument})', *after]).strip()
        cell.outputs, cell.execution_count = [], None
        report.append(f"{path.name}: {number}.{name}{argument}")
    still_used = {kind for cell in nb.cells if cell.cell_type == "code"
                  for kind in re.findall(r"\b(ChoiceExercise|NumericExercise)\(", cell.source)}
    for cell in nb.cells:  # the import: NumericExercise/ChoiceExercise (those no cell uses) -> exercises
        if cell.cell_type == "code" and re.search(r"^from batchlab import", cell.source, re.MULTILINE):
            if re.search(r"\bexercises\b", cell.source):
                break
            new = re.sub(r"\b(ChoiceExercise|NumericExercise),\s*",
                         lambda m: m[0] if m[1] in still_used else "", cell.source)
            if new != cell.source or still_used:
                cell.source = re.sub(r"\bfrom batchlab import (\(?\s*)",
                                     r"from batchlab import \1exercises, ", new, count=1)
                cell.outputs, cell.execution_count = [], None
            break
    DATA.mkdir(parents=True, exist_ok=True)
    data_file.write_text(text, encoding="utf-8")
    nbformat.write(nb, path)
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff:  # sort the rewritten import as `make lint` wants it
        subprocess.run([ruff, "check", "--quiet", "--select", "I", "--fix", str(path)], check=False)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    for path in parser.parse_args(argv).notebooks:
        for line in convert(path):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
