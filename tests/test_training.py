"""Training helpers: step counts, fp16 warning, resume, best epoch, memory estimate, fp32 LoRA."""
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig

from helpers import checkpoints, memory, models, schedule


def test_optimizer_steps():
    assert schedule.optimizer_steps(32, 4, 1, 10) == 80  # one process here
    assert schedule.optimizer_steps(33, 4, 2, 1) == 5      # 9 batches, accumulated in twos → 5 updates
    assert schedule.optimizer_steps(32, 4, 1, 2, processes=2) == 8


def test_fp16_few_steps_warning(capsys):
    assert "20 回" in schedule.warn_few_steps(8, fp16=True)
    assert "注意" in capsys.readouterr().out
    assert schedule.warn_few_steps(8, fp16=False) == ""
    assert schedule.warn_few_steps(40, fp16=True) == ""


def test_best_epoch_is_the_lowest_validation_loss_not_the_last():
    history = [{"loss": 3.0, "epoch": 1}, {"eval_loss": 2.0, "epoch": 1}, {"eval_loss": 1.2, "epoch": 2},
               {"eval_loss": 1.1, "epoch": 3}, {"eval_loss": 1.4, "epoch": 4}, {"eval_loss": 1.9, "epoch": 5}]
    assert checkpoints.best_epoch(history) == (3, 1.1)


def checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
        checkpoints.write_file_list(path)
    return str(path)


LLAMA_1_8B = AutoConfig.for_model(**models.LLM_JP_1_8B)


def test_shape_counts_parameters_and_lora_sizes():
    s = memory.shape(LLAMA_1_8B)
    per_layer = 4 * 2048 * 2048 + 3 * 2048 * 7168 + 2 * 2048  # attention, MLP, two norms
    assert s.params == 24 * per_layer + 2 * 99584 * 2048 + 2048
    # LoRA at rank 1 adds in+out per Linear: q,k,v,o (2048+2048 each), gate, up, down (2048+7168 each)
    assert s.lora_params == 24 * (4 * 4096 + 3 * 9216)


def test_lora_parameters_stay_fp32_on_an_fp16_model(tiny_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float16)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert next(p for n, p in model.named_parameters() if "base_layer" in n).dtype == torch.float16


def saved_checkpoint(folder, step):
    """A checkpoint folder with the kinds of files `Trainer` writes."""
    from safetensors.torch import save_file
    path = Path(checkpoint(folder, step))
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (path / "adapter_config.json").write_text(json.dumps({"r": 8}))
    save_file({"lora_A": torch.ones(64, 64)}, path / "adapter_model.safetensors")
    torch.save({"state": {0: torch.ones(64, 64)}}, path / "optimizer.pt")
    checkpoints.write_file_list(path)
    return path


def relisted(break_it):
    """A file broken when the checkpoint was saved (its list has the broken file's size): its contents are checked."""
    return lambda path: (break_it(path), checkpoints.write_file_list(path))


@pytest.mark.parametrize("break_it, says", [
    (relisted(lambda p: (p / "adapter_model.safetensors").write_bytes((p / "adapter_model.safetensors").read_bytes()[:-100])),
     "adapter_model.safetensors を読めません"),
    (relisted(lambda p: (p / "optimizer.pt").write_bytes((p / "optimizer.pt").read_bytes()[:-100])), "optimizer.pt を読めません"),
    (relisted(lambda p: (p / "trainer_state.json").write_text('{"global_step": ')), "trainer_state.json を読めません"),
    (relisted(lambda p: (p / "adapter_config.json").write_bytes(b"\xff\xfe")), "adapter_config.json を読めません"),
    (relisted(lambda p: (p / "adapter_model.safetensors").write_bytes(b"\xff" * 16)), "adapter_model.safetensors を読めません"),
    (lambda p: (p / "optimizer.pt").unlink(), "optimizer.pt がないか"),  # every file the Trainer wrote is needed
    (lambda p: (p / "optimizer.pt").write_bytes(b""), "optimizer.pt がないか、大きさが保存したときと違います"),  # not yet on Drive
    (lambda p: [(p / name).unlink() for name in (checkpoints.FILES, "trainer_state.json")],
     f"保存の途中で切れています ({checkpoints.FILES} がありません)"),
])
def test_a_broken_newest_checkpoint_is_named_and_the_one_before_is_resumed(tmp_path, capsys, break_it, says):
    folder = tmp_path / "checkpoints"
    good = saved_checkpoint(folder, 8)
    break_it(saved_checkpoint(folder, 16))
    assert checkpoints.damage(good) is None
    assert checkpoints.resume_point(folder) == str(good)
    assert f"checkpoint-16 は使いません: {says}" in capsys.readouterr().out


def test_a_checkpoint_saved_before_the_file_lists_is_still_resumed(tmp_path):
    """Saved by an earlier version of 03 (no list): the trainer state, which `Trainer` writes last, says it is whole."""
    folder = tmp_path / "checkpoints"
    (saved_checkpoint(folder, 8) / checkpoints.FILES).unlink()
    assert checkpoints.resume_point(folder) == str(folder / "checkpoint-8")


def test_automatic_epochs_repeat_small_data_more():
    assert [schedule.auto_epochs(rows) for rows in (1, 32, 48, 100, 160, 5000)] == [20, 10, 7, 4, 2, 2]
    assert [schedule.duration(s) for s in (42, 200, 3725)] == ["42 秒", "3 分 20 秒", "1 時間 2 分"]


def test_the_time_estimate_comes_from_the_first_updates_and_is_updated(monkeypatch, capsys):
    from types import SimpleNamespace
    clock = [100.0]
    monkeypatch.setattr(schedule.time, "monotonic", lambda: clock[0])
    estimate = schedule.time_callback(measured_steps=5)
    args = SimpleNamespace(num_train_epochs=10, eval_strategy="epoch", save_strategy="epoch")
    state = SimpleNamespace(global_step=0, max_steps=100, epoch=0, is_world_process_zero=True)
    estimate.on_train_begin(args, state, None)
    for step in range(1, 21):
        clock[0] += 30.0 if step == 1 else 2.0  # the first update is slow (warm-up), then 2 s each
        state.global_step, state.epoch = step, step / 10
        estimate.on_step_end(args, state, None)
        if step % 10 == 0:
            estimate.on_epoch_end(args, state, None)
    printed = capsys.readouterr().out
    assert "最初の 5 回の更新から見積もると、残り 94 回で約 3 分 8 秒 (エポックごとの評価と保存" in printed  # 94 × 2 s, the first left out
    assert ":" not in printed  # no clock time: Colab's runtime clock is UTC, hours off for a reader in Japan
    assert "エポック 2/10 が終わりました。残りは約 2 分 40 秒" in printed  # 80 × 2 s
