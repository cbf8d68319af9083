"""`python -m helpers.train`: the notebook's training from the command line, resumed after a
kill, and under `accelerate launch` with two processes (DDP on CPU)."""
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import artefacts, checkpoints, data
from helpers.env import REPO_ROOT
from ports import free_port

pytestmark = pytest.mark.colab  # run under Colab's versions too (make test)

SETTINGS = {"MODEL": "tiny", "EPOCHS": 10, "LEARNING_RATE": 1e-3, "BATCH_SIZE": 4, "GRAD_ACCUM": 1, "LORA_R": 8,
            "LORA_ALPHA": 16, "LORA_DROPOUT": 0.05, "MAX_LENGTH": 64, "USE_4BIT": False,
            "GRADIENT_CHECKPOINTING": False, "RESUME": True, "SEED": 42}


@pytest.fixture(scope="module")
def prepared():
    """02's default data, as 03 prepares it without 02 (the fresh run below)."""
    splits = data.split(data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv"), 0.2, seed=42)
    return data.mix_general(splits, data.DEFAULT_GENERAL_ROWS)


def workspace(tmp_path, prepared, **changes):
    out = tmp_path / "out"
    data.save_prepared(prepared, out)
    config = tmp_path / "train_settings.json"
    config.write_text(json.dumps(SETTINGS | changes), encoding="utf-8")
    return out, config


def command(config, out, launcher=()):
    return [*launcher, "-m", "helpers.train", "--config", str(config), "--output-dir", str(out)]


def run(args):
    result = subprocess.run(args, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def final_losses(out):
    history = pd.read_csv(out / "loss_history.csv", index_col=0)
    return history["validation_loss"].dropna()


def speed(printed):
    return float(re.search(r"速さ: ([\d,]+) トークン/秒", printed).group(1).replace(",", ""))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, prepared):
    """A run of 10 epochs in a fresh folder, with the saved settings alone (its printout and folder); the
    kill test compares its resumed run with this one (conftest.py keeps this module on one worker)."""
    out, config = workspace(tmp_path_factory.mktemp("fresh"), prepared)
    shutil.rmtree(out / artefacts.PREPARED)  # as in a fresh Colab runtime: 02 ran elsewhere, without Drive
    return run([sys.executable, *command(config, out)]), out, config, final_losses(out)


def test_cli_trains_with_the_saved_settings_alone_in_a_fresh_folder(fresh):
    printed, out, config, losses = fresh
    assert "02 の既定の設定で用意します" in printed  # 02's default data, as the fixture made it
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    assert len(losses) == 10 and losses.iloc[-1] < 0.5 * losses.iloc[0]
    assert "学習時間" in printed and f"いちばん低いのは epoch {losses.idxmin():g} " in printed and speed(printed) > 0
    again = run([sys.executable, *command(config, out)])  # resumes at the last checkpoint: nothing left to train
    assert "から再開します" in again and speed(again) == 0  # this session's tokens, not all tokens over a short time


def complete_checkpoints(out, run):
    return sorted(int(p.parent.name.split("-")[1])
                  for p in (out / artefacts.CHECKPOINTS / run).glob(f"checkpoint-*/{checkpoints.FILES}"))


def finished(out):
    """What 04 and 05 would read: the settings file, the adapter's run and its weights."""
    return (json.loads((out / artefacts.SETTINGS).read_text(encoding="utf-8")),
            artefacts.trained_run(out)["run"], (out / "adapter" / "adapter_model.safetensors").read_bytes())


@pytest.mark.newest_pins
def test_a_changed_run_killed_midway_leaves_the_last_finished_run_whole_and_resumes(tmp_path, prepared, fresh):
    out, short_config = workspace(tmp_path / "cut", prepared, EPOCHS=2)
    run([sys.executable, *command(short_config, out)])  # a finished run with other settings
    before = finished(out)
    config = tmp_path / "cut" / "train_settings_10.json"  # the fresh run's settings: 10 epochs
    config.write_text(json.dumps(SETTINGS), encoding="utf-8")
    run_10 = artefacts.run_id(SETTINGS, artefacts.data_id(out))
    process = subprocess.Popen([sys.executable, *command(config, out)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not [s for s in complete_checkpoints(out, run_10) if s >= 24] and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # like a Colab disconnect: no chance to clean up
    process.wait()
    assert max(complete_checkpoints(out, run_10)) < 120, "the run finished before it could be interrupted"  # 12 × 10
    assert finished(out) == before, "a run that did not finish replaced the last finished one's results"
    assert before[1] != run_10 and (out / artefacts.CHECKPOINTS / before[1] / "epochs" / "epoch-002").is_dir()

    printed = run([sys.executable, *command(config, out)])
    assert "から再開します" in printed and f"1 件は、{out / artefacts.CHECKPOINTS} に残してあります" in printed
    assert before[1] in printed  # named, so it can be deleted by hand
    resumed, whole = final_losses(out), fresh[3]  # the same settings and rows, not interrupted
    assert list(resumed.index) == list(whole.index) == list(range(1, 11))
    assert resumed.iloc[-1] == pytest.approx(whole.iloc[-1], rel=1e-3)
    assert finished(out)[:2] == (SETTINGS, run_10)


@pytest.mark.newest_pins
def test_two_processes_with_accelerate_launch(tmp_path, prepared):
    out, config = workspace(tmp_path, prepared)
    accelerate = Path(sys.executable).parent / "accelerate"
    launcher = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    printed = run(command(config, out, launcher))
    assert printed.count("重みの更新回数: 60 回") == 2  # each process: half the 48 rows, 4 per batch, 10 epochs
    [state_file] = (out / artefacts.CHECKPOINTS).glob("*/checkpoint-60/trainer_state.json")
    state = json.loads(state_file.read_text())
    assert state["global_step"] == 60 and state["epoch"] == 10
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    losses = final_losses(out)
    assert losses.iloc[-1] < losses.iloc[0]
