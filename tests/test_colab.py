"""Colab as it is: the setup cell's install against Google's package list, and Colab's torchao."""
import hashlib
import json
import re
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

from helpers import colab, env
from helpers.env import REPO_ROOT
from tooling import colab_env
from tooling.notebooks import sources

pytestmark = [pytest.mark.colab, pytest.mark.unit]  # under Colab's versions too; in make test-unit

SHARED_LIST = REPO_ROOT.parent / "shared" / "colab" / "pip-freeze.gpu.txt"


def test_the_list_is_googles_file_unchanged():
    """In every clone against the committed sha256; where ../shared/colab is beside the clone, against Google's file."""
    digest = colab_env.COLAB_LIST.with_name(colab_env.COLAB_LIST.name + ".sha256").read_text().strip()
    assert hashlib.sha256(colab_env.COLAB_LIST.read_bytes()).hexdigest() == digest, "colab/ is Google's list, unchanged"
    if SHARED_LIST.is_file():
        assert hashlib.sha256(SHARED_LIST.read_bytes()).hexdigest() == digest, "copy ../shared/colab/* into colab/ unchanged"


def test_colab_versions_are_read_from_the_list():
    versions = colab_env.colab_versions()
    assert versions["transformers"] == "5.15.0" and versions["torch"] == "2.11.0"  # local label +cu128 dropped
    assert versions["huggingface-hub"] == "1.27.0" and "bitsandbytes" not in versions
    assert "google-colab" not in versions  # installed from a file URL: no version to pin


def test_the_setup_cell_installs_only_what_colab_lacks_and_says_which():
    plan = colab.missing(set(colab_env.colab_versions()))
    assert plan == [colab.requirements()["bitsandbytes"], colab.requirements()["matplotlib-fontja"]]
    setup_markdown = sources()[0].read_text(encoding="utf-8").split("# @title 0.")[1].split("\nUSE_GOOGLE_DRIVE")[0]
    assert plan and "だけを入れます" in setup_markdown
    for line in plan:  # the note names each package the cell installs
        assert colab.name(re.split(r"[=<>~!]", line)[0]) in setup_markdown, line


def test_the_setup_cell_names_the_url_when_the_clone_fails(monkeypatch):
    cell = "# @title 0." + sources()[0].read_text(encoding="utf-8").split("# @title 0.")[1].split("import helpers\n")[0]
    cell = re.sub(r'REPO_URL = ".*"', 'REPO_URL = "file:///nonexistent/no-such-repo"', cell)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    with pytest.raises(SystemExit, match="file:///nonexistent/no-such-repo を取得できませんでした.*REPO_URL"):
        exec(cell, {})


def fake_colab(folder: Path) -> Path:
    """A bare venv whose site-packages holds Colab's list as metadata only: pip sees it as installed."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for package, version in colab_env.colab_versions().items():
        info = site / f"{package.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    return python


def test_the_colab_venvs_lists_are_written_with_the_standard_library_alone(tmp_path):
    """`make test` writes them in the new venv before anything is installed there (beside our venv's install)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    written = subprocess.run([tmp_path / "bare" / "bin" / "python", "-m", "tooling.colab_env", tmp_path / "lists"],
                             cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    wanted = (tmp_path / "lists" / "requirements.txt").read_text().split()
    assert "transformers" in wanted and colab.requirements()["bitsandbytes"] in wanted  # Colab's, or pinned as the setup cell installs it
    assert "transformers==5.15.0" in (tmp_path / "lists" / "constraints.txt").read_text().split()


def changed(python: Path, requirements: list[str], report: Path) -> dict[str, str]:
    """What `pip install` would install or replace there, for Colab's Python, from the package registry."""
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "-q",
                    "--report", str(report), "--only-binary=:all:", "--python-version", "3.13", *requirements],
                   check=True, capture_output=True, text=True)
    return {colab.name(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


@pytest.mark.network
def test_the_setup_install_changes_no_package_colab_has(tmp_path):
    python = fake_colab(tmp_path / "colab")
    plan = colab.missing(set(colab_env.colab_versions()))
    planned = changed(python, plan, tmp_path / "report.json")
    assert set(planned) == {colab.name(line.split("==")[0]) for line in plan}
    assert not set(planned) & set(colab_env.colab_versions())
    # the check can fail: a requirement Colab's numpy 2.1.3 doesn't meet shows up as a change
    assert "numpy" in changed(python, [*plan, "numpy>=2.2"], tmp_path / "control.json")


def peft_wraps_a_layer(*, import_helpers_first: bool, pythonpath: Path) -> subprocess.CompletedProcess:
    code = ("import helpers\n" if import_helpers_first else "") + (
        "import torch, peft\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 4))\n"
        "peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=['0']))\n"
        "print('wrapped')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"})


@pytest.mark.colab_venv
def test_colabs_old_torchao_breaks_peft_unless_helpers_hides_it(tmp_path):
    version = colab_env.colab_versions()["torchao"]
    (tmp_path / "torchao").mkdir()  # Colab's torchao as peft sees it: importable, with its version
    (tmp_path / "torchao" / "__init__.py").write_text(f"__version__ = '{version}'\n")
    (tmp_path / f"torchao-{version}.dist-info").mkdir()
    (tmp_path / f"torchao-{version}.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: torchao\nVersion: {version}\n")
    plain = peft_wraps_a_layer(import_helpers_first=False, pythonpath=tmp_path)
    assert "incompatible version of torchao" in plain.stderr
    fixed = peft_wraps_a_layer(import_helpers_first=True, pythonpath=tmp_path)
    assert fixed.returncode == 0 and "wrapped" in fixed.stdout, fixed.stderr


def test_setup_on_colabs_packages_pip_installs_only_the_missing_pins_and_says_so(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(colab, "installed_here", lambda: set(colab_env.colab_versions()))
    commands = []
    monkeypatch.setattr(colab.subprocess, "run", lambda command, **kwargs: commands.append(command)
                        or subprocess.CompletedProcess(command, 0, "", ""))
    colab.setup(str(REPO_ROOT), use_drive=False)
    added = [colab.requirements()["bitsandbytes"], colab.requirements()["matplotlib-fontja"]]
    assert commands == [[sys.executable, "-m", "pip", "install", "-q", *added]]
    shown = capsys.readouterr().out
    assert f"追加したもの: {', '.join(added)}" in shown and "USE_GOOGLE_DRIVE はオフです。結果はこのランタイムの中" in shown
    assert Path.cwd() == REPO_ROOT / "notebooks"


def test_setup_says_in_japanese_when_pip_fails(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(colab, "installed_here", lambda: set(colab_env.colab_versions()))
    monkeypatch.setattr(colab.subprocess, "run", lambda command, **kwargs:
                        subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution"))
    with pytest.raises(SystemExit, match="(?s)bitsandbytes.*入れられませんでした.*No matching distribution"):
        colab.setup(str(REPO_ROOT), use_drive=False)


@pytest.mark.colab_venv
def test_this_venv_has_colabs_versions():
    wanted = colab.requirements((REPO_ROOT / ".venv-colab" / "requirements.txt").read_text().split())
    versions = colab_env.colab_versions()
    different = {package: (metadata.version(package), versions[package]) for package in wanted
                 if package in versions and metadata.version(package) != versions[package]}
    assert not different, different


def test_finish_flushes_drive_and_says_the_runtime_can_close(monkeypatch, tmp_path, capsys):
    calls = []
    google_colab, drive = types.ModuleType("google.colab"), types.ModuleType("google.colab.drive")
    drive.flush_and_unmount = lambda: calls.append("flush_and_unmount")
    google_colab.drive = drive
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    monkeypatch.setattr(env, "DRIVE_ROOT", tmp_path)  # mounted
    colab.finish()
    assert calls == ["flush_and_unmount"]
    printed = capsys.readouterr().out
    assert "Drive への書き込みを終えて" in printed and "ランタイムは閉じてかまいません" in printed
    monkeypatch.setattr(env, "DRIVE_ROOT", tmp_path / "not-mounted")  # USE_GOOGLE_DRIVE off: closing loses the results
    monkeypatch.setenv(env.OUTPUT_VARIABLE, str(tmp_path / "outputs"))
    colab.finish()
    printed = capsys.readouterr().out
    assert calls == ["flush_and_unmount"] and "ダウンロード" in printed and "閉じてかまいません" not in printed


def test_every_notebook_ends_by_finishing():
    for source in sources():
        last_code = source.read_text(encoding="utf-8").rsplit("# %%\n", 1)[1]
        assert "colab.finish()" in last_code, source.name
