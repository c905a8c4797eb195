"""The README's two commands do all the set-up on a fresh machine: what they install covers every
import of the repository, and the Makefile creates the environment before building or testing.

CI runs `make test` on a clean clone, which is the real proof; these tests say which step is
missing, at once, when a module is imported that nothing installs.
"""

import ast
import json
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _requirement_names(lines) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _closure(names: set[str]) -> set[str]:
    """``names`` and everything they install in turn (their requirements without an extra)."""
    from importlib.metadata import PackageNotFoundError, requires

    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += _requirement_names(r for r in needs if "extra ==" not in r)
    return seen


def _pyproject_dependencies() -> set[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _requirement_names(project["dependencies"])


def _imports(source: str) -> set[str]:
    """Top-level names of the absolute imports in ``source`` (IPython magics and shell lines dropped)."""
    source = "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                       else line for line in source.splitlines())
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _code_everywhere() -> dict[str, str]:
    """Every piece of Python the two commands run: the package, tests, scripts, benchmarks, the
    book's extension, the notebooks' code cells and the Markdown chapters' code cells."""
    code = {}
    for folder in ("srlib", "tests", "scripts", "benchmarks", "book/_ext"):
        for f in (ROOT / folder).rglob("*.py"):
            code[str(f.relative_to(ROOT))] = f.read_text()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        code[str(nb.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for md in (ROOT / "book").glob("*.md"):
        cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", md.read_text(), flags=re.S)
        code[str(md.relative_to(ROOT))] = "\n".join(
            "\n".join(line for line in c.splitlines() if not line.startswith(":")) for c in cells)
    return code


def _third_party(names: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("srlib", "conftest", "_ext")
            and not (ROOT / "tests" / f"{n}.py").exists() and not (ROOT / "book" / "_ext" / f"{n}.py").exists()
            and not (ROOT / "benchmarks" / f"{n}.py").exists()}


def test_the_readme_set_up_is_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", readme, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make book", "make test"]


@pytest.mark.parametrize("target, runs", [("book", "jupyter-book build"), ("test", "python -m pytest tests")])
def test_each_command_creates_the_environment_first(tmp_path, target, runs):
    """On a clone with no .venv, `make -n` shows the environment made with Python 3.11 and filled
    from requirements.txt and the package itself, before the command's own work."""
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    plan = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    steps = plan.splitlines()
    first = [i for i, s in enumerate(steps) if "python3.11 -m venv .venv" in s]
    install = [i for i, s in enumerate(steps) if "pip install" in s and "-r requirements.txt -e ." in s]
    work = [i for i, s in enumerate(steps) if runs in s]
    assert first and install and work and first[0] < install[0] < work[0], plan
    if target == "test":
        assert any("apt-get install" in s and "chromium-driver" in s for s in steps), plan  # the browser test's


def test_every_import_is_installed_by_the_two_commands():
    """A module imported anywhere that requirements.txt does not install (itself or through what it
    lists) would work only on a machine where someone installed it by hand."""
    listed = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    assert {"torch", "jupyter-book", "pytest", "selenium"} <= listed
    installed_by_make = _closure(listed)
    dists = packages_distributions()
    missing = {}
    for where, source in _code_everywhere().items():
        for name in _third_party(_imports(source)):
            provided = {d.lower().replace("_", "-") for d in dists.get(name, [])}
            if not provided & installed_by_make:
                missing.setdefault(name, []).append(where)
    assert not missing, f"imported but not in requirements.txt: {missing}"


def test_the_package_declares_what_it_imports():
    """`pip install srlib` (Colab, a reader's environment) gets every module that srlib imports at
    the top of a module; what only some commands need (ONNX export, plots) is imported where used."""
    declared = _closure(_pyproject_dependencies())
    dists = packages_distributions()
    missing = {}
    for f in (ROOT / "srlib").rglob("*.py"):
        tree = ast.parse(f.read_text())
        top = set()
        for node in tree.body:  # module-level imports only: the ones `import srlib.x` runs
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top.add(node.module.split(".")[0])
        for name in _third_party(top):
            if not {d.lower().replace("_", "-") for d in dists.get(name, [])} & declared:
                missing.setdefault(name, []).append(str(f.relative_to(ROOT)))
    assert not missing, f"imported at module level by srlib but not in pyproject's dependencies: {missing}"


@pytest.mark.slow
def test_the_tests_that_read_the_book_run_in_one_worker(tmp_path):
    """`make test` runs pytest-xdist workers; every test that reads the built book runs in the worker
    that built it (tests/conftest.py's scheduler), never in a second one that would build it again.
    Here the book is "built" at a path with nothing in it, so those tests fail at once; which worker
    ran each is what counts."""
    import os

    env = {**os.environ, "SRLIB_BOOK_HTML": str(tmp_path / "no-book")}
    p = subprocess.run([sys.executable, "-m", "pytest", "tests/test_book.py", "tests/test_notebooks.py", "-n", "2",
                        "-v", "-p", "no:cacheprovider", "-k", "pages_exist or every_toc or checked_outputs or twins"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    ran = re.findall(r"^\[(gw\d+)\] \[\s*\d+%\] (PASSED|FAILED|ERROR) (\S+)", p.stdout, re.M)
    book = {worker for worker, _, test in ran if "test_book.py" in test or "checked_outputs" in test}
    assert len([t for t in ran if "checked_outputs" in t[2]]) == 4 and len(book) == 1, p.stdout[-3000:]
    assert any("twins" in test and result == "PASSED" for _, result, test in ran), p.stdout[-3000:]
