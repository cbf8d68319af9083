"""The notebooks as files: generated from their .py pairs, no outputs, badge, setup cell, forms."""
import ast
import re
import subprocess
import sys

import nbformat
import pytest

from helpers import models, settings
from tooling import notebooks

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)

SOURCES = notebooks.sources()
NAMES = [s.stem for s in SOURCES]
PARAM = re.compile(r"^(\w+)\s*=\s*(.+?)\s*#\s*@param\s*(.*)$")
TYPES = {"integer": int, "number": (int, float), "boolean": bool, "string": str}


def cells(source):
    return nbformat.read(source.with_suffix(".ipynb"), as_version=4).cells


def test_the_stages_exist_in_order():
    assert NAMES == ["00_quickstart", "01_inference_before_tuning", "02_build_dataset", "03_lora_finetune",
                     "04_compare_after_tuning", "05_share_and_serve"]


@pytest.mark.parametrize("source", SOURCES, ids=NAMES)
def test_ipynb_is_generated_from_py_pair_without_outputs(source):
    committed = cells(source)
    expected = notebooks.render(source).cells
    assert [(c.id, c.cell_type, c.source) for c in committed] == [(c.id, c.cell_type, c.source) for c in expected], \
        "run `make notebooks` after editing notebooks/*.py"
    for cell in committed:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("source", SOURCES, ids=NAMES)
def test_badge_opening_and_closing(source):
    first = cells(source)[0].source
    last = [cell.source for cell in cells(source) if cell.cell_type == "markdown"][-1]
    slug = notebooks.repo_url().removeprefix("https://github.com/")
    assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{source.stem}.ipynb" in first
    assert "このノートブックでやること" in first and "かかる時間" in first
    assert "まとめ" in last
    following = NAMES[NAMES.index(source.stem) + 1] if source.stem < NAMES[-1] else "02_build_dataset"  # 05: start over
    assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{following}.ipynb" in last, "no badge to the next one"


def setup_cell(source):
    code = [c for c in cells(source) if c.cell_type == "code"]
    return code[0].source


@pytest.mark.parametrize("source", SOURCES, ids=NAMES)
def test_repeated_cells_are_written_from_one_place(source):
    text = source.read_text(encoding="utf-8")
    assert notebooks.generated(text) == text, "run `make notebooks`"
    assert notebooks.setup_cell(drive=True) in text or notebooks.setup_cell(drive=False) in text
    assert text.endswith("# %%\n" + notebooks.FINISH_CELL.read_text(encoding="utf-8"))  # the last cell
    drifted = (text.replace('REPO_DIR = "/content/"', 'REPO_DIR = "/tmp/"').replace('"tiny"]', '"tiny", "me/other"]')
               .replace("# @title おわり: 結果を", "# @title おわり: 結果を必ず"))
    assert drifted != text and notebooks.generated(drifted) == text  # sync puts all three back


def test_same_setup_cell_everywhere_but_00_leaves_drive_off():
    """Results pass between 01–05 through Drive; the quick start is one runtime and needs none (no consent screen)."""
    first = setup_cell(SOURCES[1])
    assert "# @title 0. セットアップ" in first and f'REPO_URL = "{notebooks.repo_url()}"' in first
    assert "colab.setup(REPO_DIR, USE_GOOGLE_DRIVE)" in first and "USE_GOOGLE_DRIVE = True" in first
    assert "requirements.txt" not in first, "in Colab only what Colab lacks is installed (helpers.colab)"
    assert all(setup_cell(s) == first for s in SOURCES[1:])
    quick = setup_cell(SOURCES[0])
    assert "USE_GOOGLE_DRIVE = False" in quick and "Google Drive は使いません" in quick and "権限" not in quick
    assert quick.split("\nUSE_GOOGLE_DRIVE")[1] == first.split("\nUSE_GOOGLE_DRIVE")[1].replace(" = True", " = False", 1)


@pytest.mark.parametrize("source", SOURCES, ids=NAMES)
def test_opens_in_colab_on_a_t4_if_it_needs_a_gpu(source):
    metadata = nbformat.read(source.with_suffix(".ipynb"), as_version=4).metadata
    if source.stem == "02_build_dataset":  # a tokenizer only: Colab's CPU runtime, the free GPU time kept
        assert "accelerator" not in metadata and "gpuType" not in metadata["colab"]
    else:
        assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"] == "T4"


def test_the_quick_start_reaches_its_before_after_table_in_one_runtime_within_12_code_cells():
    """Issue 30's target: the whole path in one Colab runtime, no Drive, the table within 12 code cells,
    through the lesson's own calls (no second implementation hidden in helpers)."""
    code = [cell.source for cell in cells(SOURCES[0]) if cell.cell_type == "code"]
    table = next(i for i, source in enumerate(code) if "tables.highlight(table)" in source)
    assert table + 1 <= 12
    text = "\n".join(code)
    for lesson in ("AutoModelForCausalLM.from_pretrained", "generation.answer", "tokenize(", "LoraConfig(",
                   "TrainingArguments(", "Trainer(", "trainer.train()", "tables.comparison("):
        assert lesson in text, lesson
    assert "check_drive" not in text and "load_prepared" not in text and "require(" not in text  # nothing from another runtime
    assert "out = env.output_dir() / artefacts.QUICKSTART" in text  # its own folder: 04's comparison.csv stays 04's



def test_the_quick_start_names_at_most_15_new_terms_before_its_table_and_recaps_them():
    """Issue 30's other target: each new term is bold where it is explained, and the まとめ lists them all;
    a term bolded before the table but missing from the recap (or a recap past 15) fails."""
    bold = re.compile(r"\*\*(.+?)\*\*(:?)")
    shown, recap = set(), []
    for i, cell in enumerate(cells(SOURCES[0])):
        if "tables.highlight(table)" in cell.source:
            break
        if cell.cell_type == "markdown":  # the opening's labels ("**進め方**:") aside
            shown |= {term for term, colon in bold.findall(cell.source) if not (i == 0 and colon)}
    summary = next(c.source for c in cells(SOURCES[0]) if c.source.startswith("## まとめ"))
    for line in summary.split("\n\n")[0].splitlines():
        if line.startswith("- **"):
            recap += bold.findall(line.split(": ")[0])
    recap = [term for term, _ in recap]
    assert shown and shown <= set(recap), shown - set(recap)
    assert len(recap) <= 15, recap

def forms(source):
    for cell in cells(source):
        if cell.cell_type == "code" and "@param" in cell.source:
            yield cell.source


@pytest.mark.parametrize("source", SOURCES, ids=NAMES)
def test_form_fields_are_valid(source):
    fields = 0
    for form in forms(source):
        assert "# @title" in form, "a form cell needs a # @title"
        for line in form.splitlines():
            match = PARAM.match(line)
            if "@param" not in line:
                continue
            assert match, f"not a form field: {line}"
            name, value, spec = match.group(1), ast.literal_eval(match.group(2)), match.group(3)
            if spec.startswith("["):
                options = ast.literal_eval(spec[: spec.index("]") + 1])
                assert value in options or "allow-input: true" in spec, name
                if name == "MODEL":
                    assert options in (models.CHOICES, [settings.FROM_01, *models.CHOICES], [settings.FROM_02, *models.CHOICES])
                    assert "allow-input: true" in spec
                if name in settings.RANGES:  # choices arrive as text: each one valid once read as a number
                    assert all(settings.problem(name, c if c == settings.FROM_02 else settings._cast(name, c, c)) is None
                               for c in options), name
            elif "slider" in spec:  # a Colab slider: inside the allowed range, the default on its steps
                low, high, step = (float(re.search(rf"{key}:\s*([\d.]+)", spec).group(1)) for key in ("min", "max", "step"))
                assert settings.problem(name, low) is None and settings.problem(name, high) is None, name
                assert low <= value <= high and round((value - low) / step, 6).is_integer(), name
            else:
                kind = re.fullmatch(r'\{type:\s*"(\w+)"\}', spec).group(1)
                assert isinstance(value, TYPES[kind]), f"{name}: {value!r} is not {kind}"
                if kind in ("integer", "number"):  # checked by settings.collect, and the default is allowed
                    assert name in settings.RANGES and settings.problem(name, value) is None, name
            fields += 1
    assert fields >= 1


@pytest.mark.parametrize("source", SOURCES, ids=NAMES)
def test_every_form_field_has_a_note_and_every_number_knob_its_usual_range(source):
    for form in forms(source):
        lines = form.splitlines()
        for i, line in enumerate(lines):
            match = PARAM.match(line)
            if not match:
                continue
            name = match.group(1)
            assert lines[i - 1].startswith(f"# @markdown **{name}**: "), f"{name}: no note above the field"
            if name in settings.RANGES:
                assert settings.RANGES[name][2] in lines[i - 1], f"{name}: the note does not give the usual range"


def test_url_is_rewritten_everywhere():
    text = ("[![Open In Colab](x)](https://colab.research.google.com/github/old/name/blob/main/notebooks/a.ipynb)\n"
            'REPO_URL = "https://github.com/old/name"')
    new = notebooks.with_url(text, "https://github.com/someone/fork")
    assert "old/name" not in new
    assert "colab.research.google.com/github/someone/fork/blob/main/notebooks/a.ipynb" in new
    assert 'REPO_URL = "https://github.com/someone/fork"' in new
    other = "[llama.cpp](https://github.com/ggml-org/llama.cpp)"  # another project's link stays
    assert other in notebooks.with_url(text + "\n" + other, "https://github.com/someone/fork")


def test_a_fork_changes_the_repository_url_in_pyproject_alone():
    """Every link to this repository that `make notebooks` writes (badges, setup cell, README, CONTRIBUTING)
    follows pyproject's URL: a fork that changes it there and runs `make notebooks` has no old link left."""
    slug = notebooks.repo_url().removeprefix("https://github.com/")
    for path in notebooks.synced():
        forked = notebooks.with_url(path.read_text(encoding="utf-8"), "https://github.com/someone/fork")
        assert slug not in forked, path.name
    assert {p.name for p in notebooks.synced()} >= {"README.md", "CONTRIBUTING.md", "setup_cell.py", *(s.name for s in SOURCES)}


def test_readme_badges_use_the_repository_url():
    readme = (notebooks.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    slug = notebooks.repo_url().removeprefix("https://github.com/")
    for name in NAMES:
        assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{name}.ipynb" in readme


def test_run_command_selects_the_notebooks_asked_for(tmp_path):
    names = lambda paths: [p.stem[:2] for p in paths]  # noqa: E731
    assert names(notebooks.selected(only="02")) == ["02"]
    assert names(notebooks.selected(upto="03")) == ["00", "01", "02", "03"]
    assert names(notebooks.selected(since="03", upto="04")) == ["03", "04"]
    assert names(notebooks.selected()) == ["00", "01", "02", "03", "04", "05"]
    unknown = subprocess.run([sys.executable, "-m", "tooling.notebooks", "run", str(tmp_path), "--only", "09"],
                             capture_output=True, text=True, cwd=notebooks.REPO_ROOT)
    assert unknown.returncode == 2 and "--only 09: そのノートブックはありません" in unknown.stderr
    assert not (tmp_path / "executed").exists()