import errno
import importlib
import sys
import types

import pytest
import torch

from helpers import env, settings
from safetensors import SafetensorError

from helpers.errors import TutorialError, japanese_errors

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)


@pytest.mark.parametrize("capability, dtype, fp16, bf16", [
    ((7, 5), torch.float16, True, False),   # T4: bf16 emulated at best → fp16 AMP
    ((7, 0), torch.float16, True, False),   # V100
    ((8, 0), torch.bfloat16, False, True),  # A100
    ((9, 0), torch.bfloat16, False, True),  # H100
])
def test_precision_by_compute_capability(capability, dtype, fp16, bf16):
    choice = env.choose_precision(capability=capability)
    assert (choice.device, choice.dtype, choice.fp16, choice.bf16) == ("cuda", dtype, fp16, bf16)
    assert f"{capability[0]}.{capability[1]}" in choice.reason


def test_precision_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    choice = env.choose_precision()
    assert (choice.device, choice.dtype, choice.fp16, choice.bf16) == ("cpu", torch.float32, False, False)


def in_colab_without_gpu(monkeypatch, tmp_path):
    """Pretend to be a Colab runtime (google.colab imported, no GPU, uploads in tmp_path/content)."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(env, "UPLOADS", tmp_path / "content")
    monkeypatch.setattr(env, "DRIVE_ROOT", tmp_path / "drive")
    monkeypatch.setenv("FINETUNE_OUTPUT_DIR", str(tmp_path / "out"))


def test_colab_without_gpu_stops_a_real_model_with_the_menu_path(monkeypatch, tmp_path):
    in_colab_without_gpu(monkeypatch, tmp_path)
    with pytest.raises(TutorialError, match="ランタイムのタイプを変更.*T4 GPU"):
        env.choose_precision("llm-jp/llm-jp-3.1-1.8b-instruct4")
    assert env.choose_precision("tiny").device == "cpu"  # the practice model runs on a CPU


def test_colab_stops_before_a_long_step_unless_results_go_to_drive(monkeypatch, tmp_path):
    in_colab_without_gpu(monkeypatch, tmp_path)
    with pytest.raises(TutorialError, match="USE_GOOGLE_DRIVE"):
        env.check_drive(tmp_path / "out", "学習")
    (tmp_path / "drive" / "llm-finetune-ja").mkdir(parents=True)
    env.check_drive(tmp_path / "drive" / "llm-finetune-ja", "学習")


def test_missing_input_says_which_notebook_and_in_colab_how_results_travel(monkeypatch, tmp_path):
    with pytest.raises(TutorialError, match="03_lora_finetune") as local:
        env.require(tmp_path / "adapter", "03_lora_finetune.ipynb")
    assert "Drive" not in str(local.value)
    in_colab_without_gpu(monkeypatch, tmp_path)
    with pytest.raises(TutorialError, match="03_lora_finetune.*別のランタイム.*USE_GOOGLE_DRIVE"):
        env.require(tmp_path / "adapter", "03_lora_finetune.ipynb")
    (tmp_path / "drive" / "llm-finetune-ja").mkdir(parents=True)  # Drive is on, but 03 didn't write there
    with pytest.raises(TutorialError, match="USE_GOOGLE_DRIVE をオンにして最後まで実行しましたか"):
        env.require(tmp_path / "drive" / "llm-finetune-ja" / "adapter", "03_lora_finetune.ipynb")


def test_a_bare_file_name_is_found_among_colab_uploads(monkeypatch, tmp_path):
    in_colab_without_gpu(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "mine.csv").write_text("instruction,output\nq,a\n", encoding="utf-8")
    assert env.locate("mine.csv") == tmp_path / "content" / "mine.csv"
    assert env.locate("datasets/template.csv") == env.REPO_ROOT / "datasets" / "template.csv"
    with pytest.raises(TutorialError) as missing:
        env.locate("other.csv")
    for place in (tmp_path / "content" / "other.csv", tmp_path / "out" / "other.csv"):
        assert str(place) in str(missing.value)


def test_output_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FINETUNE_OUTPUT_DIR", str(tmp_path / "out"))
    assert env.output_dir() == tmp_path / "out" and (tmp_path / "out").is_dir()


def test_settings_overrides_keep_types(monkeypatch):
    monkeypatch.setenv("TUTORIAL_EPOCHS", "7")
    monkeypatch.setenv("TUTORIAL_LEARNING_RATE", "1e-3")
    monkeypatch.setenv("TUTORIAL_USE_DRIVE", "false")
    monkeypatch.delenv("TUTORIAL_MODEL", raising=False)
    cfg = settings.collect(MODEL="llm-jp/x", EPOCHS=3, LEARNING_RATE=2e-4, USE_DRIVE=True)
    assert (cfg.MODEL, cfg.EPOCHS, cfg.LEARNING_RATE, cfg.USE_DRIVE) == ("llm-jp/x", 7, 1e-3, False)


def test_unknown_model_gets_japanese_message(monkeypatch, tmp_path):
    from transformers import AutoTokenizer
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TutorialError, match="見つかりませんでした.*つづり"):
        with japanese_errors("no-such/model"):
            AutoTokenizer.from_pretrained(str(tmp_path / "no-such-model"))


def test_out_of_memory_gets_advice():
    with pytest.raises(TutorialError, match="バッチサイズ"):
        with japanese_errors("学習"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")


@pytest.mark.parametrize("field, value, says", [
    ("EPOCHS", -1, "EPOCHS = -1 は範囲の外"), ("EPOCHS", -3, "0〜1000"), ("EPOCHS", "20", "整数ではありません"),
    ("EPOCHS", 2.5, "整数ではありません"), ("LEARNING_RATE", 0.0, "範囲の外"), ("LEARNING_RATE", float("nan"), "数ではありません"),
    ("LORA_R", 0, "範囲の外"), ("GRAD_ACCUM", 0, "範囲の外"), ("VALIDATION_RATIO", 0.0, "範囲の外"),
    ("VALIDATION_RATIO", 1.0, "範囲の外"), ("TEST_SIZE", 0, "範囲の外"), ("TEMPERATURE", 0.0, "範囲の外"),
    ("TOP_P", 1.5, "範囲の外"), ("MAX_NEW_TOKENS", True, "整数ではありません"),
])
def test_wrong_form_values_stop_with_the_field_the_value_and_the_range(field, value, says):
    with pytest.raises(TutorialError, match=says) as stopped:
        settings.collect(MODEL="tiny", **{field: value})
    assert field in str(stopped.value) and "ふつう" in str(stopped.value)


def test_all_wrong_values_are_listed_at_once_and_good_ones_pass(monkeypatch):
    monkeypatch.setenv("TUTORIAL_EPOCHS", "abc")
    with pytest.raises(TutorialError) as stopped:
        settings.collect(EPOCHS=3, LORA_R=0, LEARNING_RATE=2e-4)
    assert "(環境変数 TUTORIAL_EPOCHS から) EPOCHS = 'abc' は整数ではありません。0〜1000" in str(stopped.value)
    assert "LORA_R = 0" in str(stopped.value)
    assert "LEARNING_RATE" not in str(stopped.value)
    monkeypatch.delenv("TUTORIAL_EPOCHS")
    assert settings.collect(EPOCHS=1, LORA_DROPOUT=0, TOLERANCE=0, ROW_LIMIT=0).EPOCHS == 1
    assert settings.collect(EPOCHS=0).EPOCHS == 0  # 0: 03 chooses from the data (schedule.auto_epochs)
    monkeypatch.setenv("TUTORIAL_LEARNING_RATE", "1e-3")  # read by the field's kind, even where the form holds 1
    monkeypatch.setenv("TUTORIAL_EPOCHS", "3.0")
    assert vars(settings.collect(LEARNING_RATE=1, EPOCHS=2)) == {"LEARNING_RATE": 1e-3, "EPOCHS": 3}


@pytest.mark.parametrize("fault, says", [
    (OSError(errno.ENOSPC, "No space left on device", "/tmp/x/adapter_model.safetensors"),
     "書けなくなりました.*adapter_model.safetensors、その場所の空き: [\\d.]+ GiB.*checkpoints/"),
    (RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed"),
     "書けなくなりました.*ディスクの空き"),
    (SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: \"No space left on device\" })"),
     "書けなくなりました.*Drive の空き容量"),
    (PermissionError(errno.EACCES, "Permission denied", "/read-only/out"), "/read-only/out を使えません.*FINETUNE_OUTPUT_DIR"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"), "/ro/x を使えません"),
    (OSError(errno.ENOTCONN, "Transport endpoint is not connected", "/content/drive/MyDrive/x"), "接続が切れました.*マウントし直して"),
])
def test_disk_and_folder_faults_say_what_and_how_to_fix(fault, says):
    with pytest.raises(TutorialError, match=says):
        with japanese_errors("学習"):
            raise fault


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_hub_push_is_about_the_token_not_the_spelling(status):
    from huggingface_hub.errors import HfHubHTTPError
    httpx = importlib.import_module(HfHubHTTPError.__mro__[1].__module__)  # httpx, or httpx2 in huggingface_hub 2
    response = httpx.Response(status, request=httpx.Request("POST", "https://huggingface.co/api/repos/create"))
    with pytest.raises(TutorialError, match="トークン.*REPO_ID.*HF_TOKEN") as refused:
        with japanese_errors("your-name/repo"):
            raise HfHubHTTPError("Unauthorized", response=response)
    assert "つづり" not in str(refused.value)


def test_an_offline_push_says_network():
    from huggingface_hub.errors import OfflineModeIsEnabled
    with pytest.raises(TutorialError, match="ネットワークに接続できません"):
        with japanese_errors("your-name/repo"):
            raise OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled.")


def test_other_runtime_errors_are_not_disguised():
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with japanese_errors("学習"):
            raise RuntimeError("shape mismatch")
