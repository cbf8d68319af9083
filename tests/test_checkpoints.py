"""What 03 leaves in its output folder (Drive on Colab): one checkpoint to resume from, the best epoch's adapter,
fp16 epoch adapters, nothing deleted that still takes space, and the footprint printed before training."""
import os

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

import real_tokenizers
from helpers import artefacts, checkpoints, memory, models, schedule
from helpers.prompts import tokenize

ROWS = Dataset.from_list([{"instruction": f"{n}たす1は？", "output": f"{n + 1}です。"} for n in range(8)])
EPOCHS = 3


@pytest.fixture(scope="module")
def run(tiny_path, tmp_path_factory):
    """03's saving settings on the tiny model, r 8 as in 03; the best epoch is made the first (highest loss
    counted best), so that the best and the newest checkpoint differ."""
    folder = tmp_path_factory.mktemp("run")
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_path),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    data = tokenize(ROWS, tokenizer, 64)
    args = TrainingArguments(output_dir=str(folder), num_train_epochs=EPOCHS, per_device_train_batch_size=4,
                             eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
                             load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=True,
                             use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=data, eval_dataset=data, processing_class=tokenizer,
                      callbacks=[checkpoints.save_callback()])
    note = checkpoints.footprint_note(model.get_nb_trainable_parameters()[0], tokenizer, args)
    trainer.train()
    return folder, model, tokenizer, args, note


def test_only_the_newest_checkpoint_is_whole_and_the_best_keeps_its_adapter(run):
    folder, *_ = run
    assert [c.name for c in checkpoints.numbered(folder)] == ["checkpoint-2", "checkpoint-6"]  # best (epoch 1), newest
    best, newest = checkpoints.numbered(folder)
    assert checkpoints.damage(newest) is None and checkpoints.resume_point(folder) == str(newest)
    assert (best / "adapter_model.safetensors").exists() and not list(best.glob("optimizer.pt"))
    assert "アダプターだけを残したもの" in checkpoints.damage(best)  # never resumed from


def test_the_checkpoint_before_the_newest_stays_until_training_ends(tmp_path):
    """While training, the previous whole checkpoint is kept: the newest may still be on its way to Drive."""
    from types import SimpleNamespace
    for step in (2, 4, 6):
        (tmp_path / f"checkpoint-{step}").mkdir()
        for name in ("optimizer.pt", "adapter_model.safetensors"):
            (tmp_path / f"checkpoint-{step}" / name).write_bytes(b"x")
    state = SimpleNamespace(best_model_checkpoint=str(tmp_path / "checkpoint-2"))
    checkpoints.prune(tmp_path, state, keep=2)
    assert [c.name for c in checkpoints.numbered(tmp_path)] == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    assert sorted(p.name for p in (tmp_path / "checkpoint-2").iterdir()) == ["adapter_model.safetensors",
                                                                             checkpoints.ADAPTER_ONLY]
    checkpoints.prune(tmp_path, state, keep=1)  # training has ended
    assert [c.name for c in checkpoints.numbered(tmp_path)] == ["checkpoint-2", "checkpoint-6"]


def test_epoch_adapters_are_fp16_and_load_as_the_epochs_weights(run, tiny_path):
    folder, model, *_ = run
    epochs = sorted((folder / artefacts.EPOCHS).iterdir())
    assert [e.name for e in epochs] == ["epoch-001", "epoch-002", "epoch-003"]
    weights = load_file(epochs[-1] / "adapter_model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float16}
    trained = {n: p for n, p in model.named_parameters() if "lora_" in n}  # the best (epoch 1) after the end
    first = load_file(epochs[0] / "adapter_model.safetensors")
    name = next(n for n in first if "lora_B" in n)
    assert torch.allclose(first[name].float(), trained[name.replace(".weight", ".default.weight")], atol=1e-3)


def test_deleting_empties_each_file_first_so_drives_trash_keeps_nothing(tmp_path):
    folder = tmp_path / "checkpoint-1"
    folder.mkdir()
    (folder / "optimizer.pt").write_bytes(b"x" * 1000)
    shared = tmp_path / "elsewhere.bin"
    shared.write_bytes(b"y" * 1000)
    os.link(shared, folder / "linked.bin")  # a second name of a file kept elsewhere: not emptied
    with open(folder / "optimizer.pt", "rb") as still_open:  # what a trash would keep: the file's contents
        artefacts.remove(folder)
        assert os.fstat(still_open.fileno()).st_size == 0
    assert not folder.exists() and shared.read_bytes() == b"y" * 1000
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "model.safetensors").write_bytes(b"z" * 1000)
    (tmp_path / "link").symlink_to(kept, target_is_directory=True)  # e.g. merged/ pointing at another disk
    artefacts.remove(tmp_path / "link")
    assert not (tmp_path / "link").exists() and (kept / "model.safetensors").read_bytes() == b"z" * 1000


def test_the_footprint_projected_from_a_tiny_run_matches_what_it_wrote(run):
    folder, model, tokenizer, args, note = run
    best, newest = checkpoints.numbered(folder)
    mb = checkpoints.footprint(model.get_nb_trainable_parameters()[0], EPOCHS, checkpoints.tokenizer_bytes(tokenizer),
                               "adamw_torch")
    assert artefacts.size_mb(newest) == pytest.approx(mb["checkpoint"], rel=0.1)
    assert artefacts.size_mb(folder / artefacts.EPOCHS / "epoch-003") == pytest.approx(mb["epoch_adapter"], rel=0.1)
    kept = artefacts.size_mb(folder) + mb["adapter"]  # + adapter/, which 03 writes after training
    assert kept == pytest.approx(mb["kept"], rel=0.1)
    assert f"エポックごとのアダプター {EPOCHS} 個" in note and "ゴミ箱" in note


def test_the_default_run_of_the_18b_model_keeps_under_300_mb_on_drive():
    """03's defaults on llm-jp-3 1.8B (r 8 on every linear layer, AdamW) and the sample data (02's 32 rows and 16
    general ones → automatic epochs). Budget: 2% of a free 15 GB Drive kept, and under 1 GB written. Before (two
    whole checkpoints, fp32 epoch adapters, the default of 20 epochs): 0.9 GB kept, 2.7 GB written, 1.8 GB of it
    deleted into Drive's trash."""
    tokenizer = AutoTokenizer.from_pretrained(real_tokenizers.folder("llm-jp-3"))
    trainable = 8 * memory.shape(AutoConfig.for_model(**models.LLM_JP_1_8B)).lora_params
    epochs = schedule.auto_epochs(32 + 16)
    mb = checkpoints.footprint(trainable, epochs, checkpoints.tokenizer_bytes(tokenizer), "adamw_torch")
    print(f"llm-jp-3 1.8B, {epochs} epochs: checkpoint {mb['checkpoint']:.0f} MiB, kept {mb['kept']:.0f} MiB, "
          f"written {mb['written']:.0f} MiB")
    assert mb["kept"] < 300 and mb["written"] < 1024

