"""The files passed between notebooks: written whole or not at all, stamped with their run, and
checked by 04 and 05 so that nothing stale or half-written is taken as a result."""
import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from helpers import artefacts, checkpoints
from helpers.errors import TutorialError

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)

SETTINGS = {"MODEL": "tiny", "EPOCHS": 3, "RESUME": True}


def test_a_failed_write_leaves_the_old_file_or_folder_whole(tmp_path):
    table = tmp_path / "comparison.csv"
    artefacts.save(table, pd.DataFrame({"a": [1]}), index=False)
    with pytest.raises(RuntimeError), artefacts.writing(table) as partial:
        partial.write_text("a\n2\n")
        raise RuntimeError("disk full")
    assert table.read_text() == "a\n1\n" and [p.name for p in tmp_path.iterdir()] == ["comparison.csv"]

    folder = tmp_path / "adapter"
    with artefacts.writing(folder) as partial:
        partial.mkdir()
        (partial / "weights").write_text("old")
    with pytest.raises(KeyboardInterrupt), artefacts.writing(folder) as partial:
        partial.mkdir()
        (partial / "weights").write_text("half")
        raise KeyboardInterrupt  # a stopped cell
    assert (folder / "weights").read_text() == "old"
    with artefacts.writing(folder) as partial:
        partial.mkdir()
        (partial / "weights").write_text("new")
    assert (folder / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "comparison.csv"]


def test_save_writes_tables_figures_json_and_text(tmp_path):
    figure, _ = plt.subplots()
    assert artefacts.save(tmp_path / "f.png", figure).read_bytes()[:4] == b"\x89PNG"
    assert artefacts.save(tmp_path / "d.json", {"損失": 1.5}).read_text(encoding="utf-8") == '{\n  "損失": 1.5\n}'
    assert artefacts.save(tmp_path / "t.md", "# カード").read_text(encoding="utf-8") == "# カード"
    assert pd.read_csv(artefacts.save(tmp_path / "t.csv", pd.DataFrame({"x": [1, 2]}), index=False))["x"].tolist() == [1, 2]


def prepare(out, rows="row 1"):
    (out / artefacts.PREPARED).mkdir(parents=True, exist_ok=True)
    for name in artefacts.PREPARED_FILES:
        (out / artefacts.PREPARED / name).write_text(f"{name}: {rows}\n")


def test_a_run_is_named_by_its_settings_and_data_and_other_runs_are_kept(tmp_path, capsys):
    prepare(tmp_path)
    first = artefacts.start_run(tmp_path, SETTINGS)
    (first.folder / "checkpoint-8").mkdir()
    assert artefacts.start_run(tmp_path, SETTINGS | {"RESUME": False}).id == first.id  # RESUME changes nothing trained
    assert artefacts.start_run(tmp_path, SETTINGS).folder == first.folder
    assert "ほかの学習" not in capsys.readouterr().out  # nothing else to list

    changed = artefacts.start_run(tmp_path, SETTINGS | {"EPOCHS": 4})
    assert changed.id != first.id and (first.folder / "checkpoint-8").exists()  # the other run is kept
    printed = capsys.readouterr().out
    assert "ほかの学習" in printed and first.id in printed and "削除" in printed
    prepare(tmp_path, rows="other data")
    assert artefacts.start_run(tmp_path, SETTINGS).id != first.id  # same settings, new data: a new run
    assert json.loads((changed.folder / artefacts.STAMP).read_text())["settings"]["EPOCHS"] == 4


def test_resume_off_moves_the_old_checkpoints_aside_instead_of_deleting_them(tmp_path, capsys):
    prepare(tmp_path)
    run = artefacts.start_run(tmp_path, SETTINGS)
    (run.folder / "checkpoint-8" / "trainer_state.json").parent.mkdir()
    (run.folder / "checkpoint-8" / "trainer_state.json").write_text("{}")
    (run.folder / "checkpoint-8" / checkpoints.FILES).write_text('{"trainer_state.json": 2}')  # complete
    assert checkpoints.resume_point(run.folder) == str(run.folder / "checkpoint-8")
    again = artefacts.start_run(tmp_path, SETTINGS, resume=False)
    assert again.folder == run.folder and checkpoints.resume_point(again.folder, resume=False) is None
    assert not list(again.folder.glob("checkpoint-*"))
    [aside] = artefacts.other_runs(tmp_path, run.id)
    assert aside.name.startswith(run.id + "-") and (aside / "checkpoint-8" / "trainer_state.json").exists()
    assert aside.name in capsys.readouterr().out


def adapter(out, run, **facts):
    with artefacts.writing(out / artefacts.ADAPTER) as folder:
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"w")
        artefacts.stamp(folder, run.id, data=run.data, settings=SETTINGS, **facts)


def test_04_refuses_an_adapter_without_a_stamp_or_trained_on_other_data(tmp_path):
    prepare(tmp_path)
    (tmp_path / artefacts.ADAPTER).mkdir()  # an old-style or half-copied folder
    with pytest.raises(TutorialError, match="tutorial_run.json.*03_lora_finetune.ipynb を最後まで実行し直して"):
        artefacts.trained_run(tmp_path)
    run = artefacts.start_run(tmp_path, SETTINGS)
    adapter(tmp_path, run)
    assert artefacts.trained_run(tmp_path)["run"] == run.id
    prepare(tmp_path, rows="02 ran again")
    with pytest.raises(TutorialError, match="02 のデータ.*違います.*03 を実行し直してください"):
        artefacts.trained_run(tmp_path)


class Tokenizer:
    def save_pretrained(self, folder):
        (folder / "tokenizer.json").write_text("{}")


def test_05_shares_the_adapter_04_scored_and_only_for_03s_latest_run(tmp_path, capsys):
    prepare(tmp_path)
    old = artefacts.start_run(tmp_path, SETTINGS)
    adapter(tmp_path, old)
    folder, run = artefacts.evaluated_run(tmp_path)
    assert folder == tmp_path / artefacts.ADAPTER and "summary" not in run
    assert "04 の結果 (evaluated_adapter/) がない" in capsys.readouterr().out

    epoch_3 = tmp_path / "epoch-003"
    epoch_3.mkdir()
    (epoch_3 / "adapter_model.safetensors").write_bytes(b"epoch 3")
    summary = pd.DataFrame({"split": ["train"], "exact_match_after": [1.0]}).set_index("split")
    artefacts.save_evaluated(tmp_path, epoch_3, Tokenizer(), artefacts.trained_run(tmp_path), checkpoint=3, summary=summary)
    folder, run = artefacts.evaluated_run(tmp_path)
    assert folder == tmp_path / artefacts.EVALUATED and (folder / "adapter_model.safetensors").read_bytes() == b"epoch 3"
    assert (folder / "tokenizer.json").exists() and run["checkpoint"] == 3
    assert run["summary"] == [{"split": "train", "exact_match_after": 1.0}]

    new = artefacts.start_run(tmp_path, SETTINGS | {"EPOCHS": 9})  # 03 ran again after 04
    adapter(tmp_path, new)
    with pytest.raises(TutorialError, match=f"04 が採点したのは前の学習 \\(実行 {old.id}\\).*04 を実行し直してください"):
        artefacts.evaluated_run(tmp_path)


@pytest.mark.parametrize("choice, epochs, says", [
    ("7", {1: None, 2: None}, "CHECKPOINT = '7' は使えません。.*エポックの番号 \\(1〜2\\)"),
    ("best", {1: None}, "CHECKPOINT = 'best'"),
    ("1", {}, "エポックごとのアダプターがない"),
])
def test_04_checkpoint_choice_is_checked_before_anything_runs(choice, epochs, says):
    with pytest.raises(TutorialError, match=says):
        checkpoints.choice(choice, epochs)
    assert checkpoints.choice(" adapter", epochs) == "adapter"
    assert checkpoints.choice(2, {2: None}) == 2


def test_a_full_disk_while_saving_names_the_file_and_leaves_no_partial(tmp_path, monkeypatch):
    import errno
    artefacts.save(tmp_path / "summary.csv", "old")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))
    monkeypatch.setattr(type(tmp_path), "write_text", full)
    with pytest.raises(TutorialError, match="summary.csv の保存 の途中で、ファイルを書けなくなりました.*空き: [\\d.]+ GiB"):
        artefacts.save(tmp_path / "summary.csv", "new")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"] and (tmp_path / "summary.csv").read_text() == "old"


def test_only_the_first_process_writes_under_accelerate_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with artefacts.writing(tmp_path / "adapter") as scratch:
        scratch.mkdir()
        (scratch / "weights").write_text("from process 1")
        assert tmp_path not in scratch.parents  # not the first process's partial folder
    artefacts.save(tmp_path / "summary.csv", "x")
    assert list(tmp_path.iterdir()) == []


def test_04_uses_the_epoch_adapters_of_the_training_its_adapter_came_from(tmp_path, capsys):
    prepare(tmp_path)
    run = artefacts.start_run(tmp_path, SETTINGS)
    (run.folder / "epochs" / "epoch-001").mkdir(parents=True)
    adapter(tmp_path, run, started=run.started)
    assert list(artefacts.epoch_adapters(tmp_path, artefacts.trained_run(tmp_path))) == [1]
    again = artefacts.start_run(tmp_path, SETTINGS, resume=False)  # same run, a new training, not finished
    assert again.id == run.id and again.started != run.started
    assert artefacts.epoch_adapters(tmp_path, artefacts.trained_run(tmp_path)) == {}
    assert "adapter/ だけを使います" in capsys.readouterr().out


def test_size_of_a_file_and_of_a_folder(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.bin").write_bytes(b"x" * 2**20)
    (tmp_path / "folder" / "b.bin").write_bytes(b"x" * 2**19)
    assert artefacts.size_mb(tmp_path / "folder" / "a.bin") == 1.0
    assert artefacts.size_mb(tmp_path / "folder") == 1.5
