"""Where code lives: the learner's `helpers` apart from the maintainer's `tooling`, imports pointing one way."""
import ast
import glob
import graphlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import REPO_ROOT

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)


MODULES = {f"{package}.{path.stem}".removesuffix(".__init__") for package in ("helpers", "tooling")
           for path in (REPO_ROOT / package).glob("*.py")}


def imports(package: str) -> dict[str, set[str]]:
    """Each module of `package` and the modules of ours it imports, at any depth of its code (lazy imports too)."""
    found = {}
    for path in sorted((REPO_ROOT / package).glob("*.py")):
        module = f"{package}.{path.stem}".removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(filter(None, [package if node.level else "", node.module]))
                names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
        found[module] = (names & MODULES) - {module}
    return found


def test_no_learner_module_imports_a_tool():
    leaks = {module: sorted(n for n in names if n.startswith("tooling")) for module, names in imports("helpers").items()}
    assert not any(leaks.values()), leaks


def test_the_helpers_import_no_circle():
    graph = {module: {n for n in names if n in imports("helpers")} for module, names in imports("helpers").items()}
    assert "helpers.tiny" in graph["helpers.models"] and "helpers.env" in graph["helpers.tiny"]  # the graph is read
    graphlib.TopologicalSorter(graph).prepare()  # CycleError names the circle


def test_the_module_map_names_every_module():
    readme = (REPO_ROOT / "helpers" / "README.md").read_text(encoding="utf-8")
    for package in ("helpers", "tooling"):
        for path in (REPO_ROOT / package).glob("*.py"):
            if path.stem != "__init__":
                assert f"`{path.name}`" in readme, f"{package}/{path.name} is not in helpers/README.md"


def interpreters() -> dict[tuple[int, int], str]:
    """The Python 3 interpreters this machine has (on PATH, under pyenv), by version; this one always."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(6, 16)]
    candidates += glob.glob(str(Path.home() / ".pyenv" / "versions" / "3.*" / "bin" / "python3"))
    found = {tuple(sys.version_info[:2]): sys.executable}
    for python in filter(None, candidates):
        said = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True)
        if said.returncode == 0:
            found.setdefault(tuple(map(int, said.stdout.split())), python)
    return found


def test_requires_python_is_true_to_the_code(tmp_path):
    """Under every interpreter here: the sources compile, and the part that runs on the standard library alone
    (`tooling.colab_env`, in a bare environment) works exactly from pyproject's `requires-python` on."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = tuple(map(int, re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"]).groups()))
    sources = [str(p) for folder in ("helpers", "tooling", "tests") for p in sorted((REPO_ROOT / folder).glob("*.py"))]
    compile_all = "import sys\nfor path in sys.argv[1:]: compile(open(path, encoding='utf-8').read(), path, 'exec')"
    for version, python in sorted(interpreters().items()):
        works = subprocess.run([python, "-m", "tooling.colab_env", str(tmp_path / "-".join(map(str, version)))],
                               cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
        assert (works.returncode == 0) == (version >= required), (version, works.stderr[-300:])
        if version >= required:
            compiled = subprocess.run([python, "-c", compile_all, *sources], capture_output=True, text=True)
            assert compiled.returncode == 0, (version, compiled.stderr[-300:])
