"""fp16 safety: the check before answering or training in fp16, and the guard that stops a run whose
numbers stop being finite (an inf injected into the tiny model; a collapsing fp16 loss scale)."""
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

from helpers import checkpoints, env, models, overflow
from helpers.errors import TutorialError
from helpers.prompts import tokenize

pytestmark = pytest.mark.colab  # run under Colab's versions too (make test)

ROWS = Dataset.from_list([{"instruction": f"{n}たす1は？", "output": f"{n + 1}です。"} for n in range(8)])


def fp16(device="cpu"):
    return env.Precision(device, torch.float16, True, False, "")


def overflowing(model, after_calls: int = 0, evaluating: bool = False):
    """Make the first layer's output inf from its `after_calls`-th forward on (a model that overflows fp16);
    with `evaluating`, only in evaluation (the weights stay finite, the validation loss does not)."""
    calls = {"n": 0}

    def hook(module, inputs, output):
        if evaluating and module.training:
            return None
        calls["n"] += 1
        if calls["n"] > after_calls:
            return (output[0] * torch.inf,) + tuple(output[1:]) if isinstance(output, tuple) else output * torch.inf
    return model.get_decoder().layers[0].register_forward_hook(hook)


def test_forced_precision_from_the_environment(monkeypatch):
    monkeypatch.setenv(env.PRECISION_VARIABLE, "fp16")
    choice = env.choose_precision("tiny")
    assert (choice.dtype, choice.fp16, choice.bf16) == (torch.float16, True, False)
    assert "FINETUNE_PRECISION=fp16" in choice.reason
    monkeypatch.setenv(env.PRECISION_VARIABLE, "half")
    with pytest.raises(TutorialError, match="fp16 / bf16 / fp32"):
        env.choose_precision("tiny")


def test_a_model_that_overflows_fp16_goes_on_in_fp32_with_a_message(tiny_path, tiny_tokenizer, capsys):
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float16)
    assert overflow.safe_precision(model, tiny_tokenizer, fp16()).dtype == torch.float16  # finite: nothing changes
    overflowing(model)
    safe = overflow.safe_precision(model, tiny_tokenizer, fp16(), ROWS[0])
    assert (safe.dtype, safe.fp16) == (torch.float32, False)
    assert "fp16 では計算があふれます" in capsys.readouterr().out and "fp32" in safe.reason


def test_fp32_that_does_not_fit_stops_with_the_fixes(tiny_path, tiny_tokenizer, monkeypatch):
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float16)
    overflowing(model)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (2**20, 2**30))  # 1 MiB free
    with pytest.raises(TutorialError, match="メモリが足りません.*\n直し方: bf16 が使える GPU"):
        overflow.safe_precision(model, tiny_tokenizer, fp16("cuda"), needed_bytes=2**30)


def test_models_load_in_fp16_checks_and_reloads_in_fp32(monkeypatch, capsys):
    monkeypatch.setattr(overflow, "finite", lambda model, ids: model.dtype != torch.float16)  # as Gemma 3 does
    assert models.load("tiny", fp16()).dtype == torch.float32
    assert "fp32 (32 ビット) で読み込み直して" in capsys.readouterr().out
    assert models.load("tiny", env.Precision("cpu", torch.float32, False, False, "")).dtype == torch.float32


def train(tiny_path, tiny_tokenizer, folder, *callbacks, evaluating=False):
    """A short run with 03's saving and best-epoch settings, 2 updates and 1 evaluation batch per epoch, whose
    first layer overflows from epoch 2 on: in its second update (global step 4), or in its evaluation."""
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_path),
                           LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    overflowing(model, after_calls=1 if evaluating else 4, evaluating=evaluating)
    data = tokenize(ROWS, tiny_tokenizer, 64)
    args = TrainingArguments(output_dir=str(folder), num_train_epochs=3, per_device_train_batch_size=4,
                             per_device_eval_batch_size=8, eval_strategy="epoch", save_strategy="epoch",
                             logging_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="eval_loss",
                             logging_nan_inf_filter=False, use_cpu=True, report_to="none", disable_tqdm=True)
    return Trainer(model=model, args=args, train_dataset=data, eval_dataset=data, callbacks=list(callbacks))


@pytest.mark.parametrize("evaluating, why", [(False, "更新 4 回目で LoRA の重みが inf か NaN に"),
                                             (True, "エポック 2 の検証用の損失が nan")])
def test_the_guard_stops_a_run_at_an_injected_inf_and_keeps_no_broken_epoch(tiny_path, tiny_tokenizer, tmp_path,
                                                                             evaluating, why):
    trainer = train(tiny_path, tiny_tokenizer, tmp_path / "run", overflow.guard(),
                    checkpoints.save_callback(), evaluating=evaluating)
    with pytest.raises(TutorialError, match=f"学習を止めました: {why}(.|\n)*LEARNING_RATE"):
        trainer.train()
    assert [p.name for p in (tmp_path / "run" / "epochs").iterdir()] == ["epoch-001"]
    assert [p.name for p in (tmp_path / "run").glob("checkpoint-*")] == ["checkpoint-2"]
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-2")


def test_without_the_guard_the_same_run_ends_silently_with_its_broken_epochs_saved(tiny_path, tiny_tokenizer, tmp_path):
    trainer = train(tiny_path, tiny_tokenizer, tmp_path / "run", checkpoints.save_callback())
    trainer.train()
    assert sorted(p.name for p in (tmp_path / "run" / "epochs").iterdir()) == ["epoch-001", "epoch-002", "epoch-003"]
    losses = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e]
    assert torch.isfinite(torch.tensor(losses[0])) and not torch.isfinite(torch.tensor(losses[1:])).any()


def test_the_guard_stops_when_the_fp16_loss_scale_keeps_falling(tiny_model):
    scaler = torch.amp.GradScaler("cpu", init_scale=0.5)  # 65536 halved at each skipped update, 17 times
    state = SimpleNamespace(global_step=17, epoch=1.0)
    with pytest.raises(TutorialError, match="loss scale .* 0.5 まで下がりました"):
        overflow.guard().on_step_end(None, state, None, model=tiny_model, optimizer=SimpleNamespace(scaler=scaler))
    healthy = SimpleNamespace(scaler=torch.amp.GradScaler("cpu", init_scale=1024.0))
    overflow.guard().on_step_end(None, state, None, model=tiny_model, optimizer=healthy)
