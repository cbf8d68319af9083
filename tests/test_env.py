import pytest
import torch

from helpers import env, settings
from helpers.errors import TutorialError, japanese_errors


@pytest.mark.parametrize("capability, dtype, fp16, bf16", [
    ((7, 5), torch.float16, True, False),   # T4: bf16 emulated at best → fp16 AMP
    ((7, 0), torch.float16, True, False),   # V100
    ((8, 0), torch.bfloat16, False, True),  # A100
    ((9, 0), torch.bfloat16, False, True),  # H100
])
def test_precision_by_compute_capability(capability, dtype, fp16, bf16):
    choice = env.choose_precision(capability)
    assert (choice.device, choice.dtype, choice.fp16, choice.bf16) == ("cuda", dtype, fp16, bf16)
    assert f"{capability[0]}.{capability[1]}" in choice.reason


def test_precision_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    choice = env.choose_precision()
    assert (choice.device, choice.dtype, choice.fp16, choice.bf16) == ("cpu", torch.float32, False, False)


def test_output_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    assert env.output_dir() == tmp_path / "out" and (tmp_path / "out").is_dir()


def test_settings_overrides_keep_types_and_save(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_EPOCHS", "7")
    monkeypatch.setenv("TUTORIAL_LEARNING_RATE", "1e-3")
    monkeypatch.setenv("TUTORIAL_USE_DRIVE", "false")
    monkeypatch.delenv("TUTORIAL_MODEL", raising=False)
    cfg = settings.collect(MODEL="llm-jp/x", EPOCHS=3, LEARNING_RATE=2e-4, USE_DRIVE=True)
    assert (cfg.MODEL, cfg.EPOCHS, cfg.LEARNING_RATE, cfg.USE_DRIVE) == ("llm-jp/x", 7, 1e-3, False)
    settings.save(cfg, tmp_path / "s.json")
    assert settings.load(tmp_path / "s.json") == cfg


def test_unknown_model_gets_japanese_message(monkeypatch, tmp_path):
    from transformers import AutoTokenizer
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TutorialError, match="読み込めませんでした"):
        with japanese_errors("no-such/model"):
            AutoTokenizer.from_pretrained(str(tmp_path / "no-such-model"))


def test_out_of_memory_gets_advice():
    with pytest.raises(TutorialError, match="バッチサイズ"):
        with japanese_errors("学習"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
