"""The notebooks as tests, and the folder they write for tests/test_demo.py.

Each `notebooks/NN_*.ipynb` is one test: it runs on the tiny model through `tooling.notebooks.execute`
(the runner of `make demo`), in a kernel given its own environment, so nothing is set in this process.
They write to one folder, in order, once per session, whichever asks first: a notebook's test or
the `demo_outputs` fixture (00, the quick start, writes to its own `quickstart/` in it).
`--form NAME=VALUE` gives them a form value (`make test` runs them under Colab's versions the way a
T4 user does: 4-bit, gradient checkpointing).
"""
import tempfile
from pathlib import Path

import pytest

from tooling import notebooks


class Demo:
    """Notebooks 00→05 run once, in order, into one folder; a failure is kept and named to later ones."""

    def __init__(self, settings: dict):
        self.settings, self.folder, self.failed, self.done = settings, None, "", set()

    def through(self, stem: str) -> Path:
        self.folder = self.folder or Path(tempfile.mkdtemp(prefix="tutorial-"))
        for source in notebooks.sources():
            if source.stem > stem or source.stem in self.done:
                continue
            if self.failed:
                pytest.fail(f"{self.failed} が失敗したので、そのあとのノートブック ({source.stem}〜) は実行していません", pytrace=False)
            try:
                notebooks.execute(source, self.folder, self.settings)
            except Exception:
                self.failed = self.failed if source.stem.startswith("00") else source.stem  # 01–05 need nothing of 00's
                raise
            self.done.add(source.stem)
        return self.folder


DEMO = pytest.StashKey[Demo]()


def pytest_addoption(parser):
    parser.addoption("--form", action="append", default=[], metavar="NAME=VALUE",
                     help="a form value for the notebook runs (as TUTORIAL_NAME)")


def pytest_configure(config):
    forms = config.getoption("form")
    if any("=" not in value for value in forms):
        raise pytest.UsageError(f"--form は NAME=VALUE の形で (例: --form USE_4BIT=true): {forms}")
    config.stash[DEMO] = Demo(dict(value.split("=", 1) for value in forms))


class NotebookItem(pytest.Item):
    def runtest(self):
        self.config.stash[DEMO].through(self.path.stem)

    def repr_failure(self, excinfo):
        return str(excinfo.value)  # nbclient's message: the cell, its source and the traceback

    def reportinfo(self):
        return self.path, None, self.path.name


class NotebookFile(pytest.File):
    def collect(self):
        item = NotebookItem.from_parent(self, name=self.path.name)
        item.add_marker(pytest.mark.colab)  # run under Colab's versions too
        item.add_marker(pytest.mark.slow)
        yield item


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".ipynb" and file_path.parent == notebooks.NOTEBOOK_DIR:
        return NotebookFile.from_parent(parent, path=file_path)


def pytest_xdist_make_scheduler(config, log):
    """Under `pytest -n`: tests that share what is costly to make go to one worker together: the notebooks
    and the demo checks that read what they wrote (one `Demo`), the command-line tests (one training run),
    the server tests (one server), and the template tests of one tokenizer (it and its trained model are
    made once per process). Every other test goes wherever a worker is free."""
    from xdist.scheduler import LoadScopeScheduling  # pytest-xdist: only under `pytest -n`

    class SharedTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::")[0]
            if nodeid.startswith(("notebooks/", "tests/test_demo.py")):
                return "demo"
            if module in ("tests/test_cli.py", "tests/test_serve.py"):
                return module
            if module == "tests/test_templates.py" and nodeid.endswith("]"):
                return module + "[" + nodeid.rsplit("[", 1)[1]  # the tokenizer/template pair
            return nodeid

    return SharedTogether(config, log)


def pytest_collection_modifyitems(items):
    """Tests marked slow (each runs notebooks or trains for half a minute) go first, so that under `pytest -n`
    the quick ones are left to fill in while the other worker finishes its last slow one (xdist sends the
    groups above first, most tests first, then single tests in this order)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def demo_outputs(pytestconfig) -> Path:
    """The folder notebooks 00→05 wrote (run now if their tests have not)."""
    return pytestconfig.stash[DEMO].through("99")
