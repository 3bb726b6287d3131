"""Which device a run trains on and what `train` picks for it (bachgan.devices).

There is no GPU here. The rule (`choose`) is checked on GPU descriptions as TensorFlow gives
them; the machine's own listing and the mirrored training run use TensorFlow's logical
devices: one physical CPU split into several, in a subprocess, since the split must come
before TensorFlow starts and this process's TensorFlow must stay as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bachgan import devices
from bachgan.cpu import parse
from bachgan.devices import Gpu, choose

ROOT = Path(__file__).resolve().parent.parent
PLAIN_CPU = parse("model name\t: Plain CPU\nflags\t\t: fpu sse avx2 fma\n")
BF16_CPU = parse("model name\t: Fast CPU\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
A100 = Gpu("NVIDIA A100-SXM4-40GB", (8, 0))
T4 = Gpu("Tesla T4", (7, 5))


def _env() -> dict:
    """This process's environment: conftest's cache (and training lock), the checkout."""
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def _in_logical_cpus(n: int, code: str, timeout: int = 300) -> str:
    """Run `code` in a fresh Python whose TensorFlow sees the CPU as `n` logical devices."""
    prelude = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * {n})
"""
    out = subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


# ---------------------------------------------------------------- the rule


def test_a_gpu_gets_the_seed_preset_and_bfloat16_from_ampere_on():
    plan = choose([A100], ["/device:GPU:0"], PLAIN_CPU)
    assert (plan.kind, plan.preset, plan.precision, plan.strategy) == (
        "GPU",
        "seed",
        "mixed_bfloat16",
        "default",
    )
    assert plan.label == "GPU: NVIDIA A100-SXM4-40GB"
    older = choose([T4], ["/device:GPU:0"], BF16_CPU)  # the CPU's bfloat16 does not matter
    assert (older.preset, older.precision) == ("seed", "float32")


def test_every_gpu_must_have_bfloat16_and_several_are_mirrored():
    names = ["/device:GPU:0", "/device:GPU:1"]
    mixed = choose([A100, T4], names, PLAIN_CPU)
    assert (mixed.strategy, mixed.precision) == ("mirrored", "float32")
    assert mixed.devices == tuple(names)
    two = choose([A100, A100], names, PLAIN_CPU)
    assert (two.strategy, two.precision) == ("mirrored", "mixed_bfloat16")
    assert two.label == "2 GPUs: NVIDIA A100-SXM4-40GB"
    unknown = choose([Gpu("GPU:0", None)], names[:1], PLAIN_CPU)  # no capability reported
    assert unknown.precision == "float32"


def test_a_cpu_keeps_todays_defaults_unless_it_has_native_bfloat16():
    plain = choose([], ["/device:CPU:0"], PLAIN_CPU)
    assert (plain.kind, plain.preset, plain.precision, plain.strategy) == (
        "CPU",
        "cpu",
        "float32",
        "default",
    )
    assert plain.label.startswith("CPU (") and "Plain CPU" in plain.label
    assert choose([], ["/device:CPU:0"], BF16_CPU).precision == "mixed_bfloat16"


def test_requirements_gpu_is_requirements_with_tensorflows_cuda_build():
    def pins(name: str) -> list[str]:
        lines = (ROOT / name).read_text().splitlines()
        return [line for line in lines if line.strip() and not line.startswith("#")]

    cpu, gpu = pins("requirements.txt"), pins("requirements-gpu.txt")
    version = next(p for p in cpu if p.startswith("tensorflow-cpu==")).split("==")[1]
    assert gpu == [
        f"tensorflow[and-cuda]=={version}" if p.startswith("tensorflow-cpu==") else p for p in cpu
    ]


def test_the_cpu_only_tensorflow_is_not_imported_to_look_for_gpus():
    """This venv has tensorflow-cpu: `gpus()` answers without importing TensorFlow."""
    code = (
        "import sys; from bachgan import devices as d; print(d.gpus(), 'tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    if devices._cpu_only_tensorflow():
        assert out.stdout.split() == ["()", "False"]


# ---------------------------------------------------------------- the machine, logical devices


@pytest.mark.slow
def test_several_logical_devices_are_mirrored_and_one_is_not(tmp_path):
    code = """
import json
from bachgan.devices import plan
from bachgan.train import Run
p = plan()
auto = Run({run!r}, preset="tiny", log=lambda *a: None).config
print(json.dumps({{"devices": p.devices, "strategy": p.strategy, "kind": p.kind,
    "label": p.label, "auto": auto["strategy"], "auto_precision": auto["precision"],
    "plan_precision": p.precision}}))
"""
    for n in (1, 3):
        out = _in_logical_cpus(n, code.format(run=str(tmp_path / f"r{n}")))
        got = json.loads(out.strip().splitlines()[-1])
        assert got["kind"] == "CPU" and len(got["devices"]) == n
        assert got["strategy"] == got["auto"] == ("mirrored" if n > 1 else "default")
        assert got["auto_precision"] == got["plan_precision"]
        assert ("as 3 logical devices" in got["label"]) is (n == 3)


@pytest.mark.slow
def test_explicit_cli_options_win_over_the_devices_choice(tmp_path):
    """Two logical CPUs make the device's choice `mirrored`. Through the command line
    (`bachgan.__main__.main`), an option given is what the run records and the ones left
    out are the device's, each on its own."""
    code = f"""
import json
from bachgan.__main__ import main
from bachgan.devices import plan
root = {str(tmp_path)!r}
common = ["--preset", "tiny", "--iterations", "1"]
assert main(["train", "--run-dir", root + "/a", *common, "--strategy", "default"]) == 0
assert main(["train", "--run-dir", root + "/b", *common, "--precision", "float32"]) == 0
print(json.dumps({{"plan": [plan().strategy, plan().precision]}}))
"""
    lines = _in_logical_cpus(2, code).strip().splitlines()
    device = json.loads(lines[-1])["plan"]
    a, b = (json.loads((tmp_path / r / "config.json").read_text()) for r in "ab")
    assert device[0] == "mirrored"
    assert (a["strategy"], a["replicas"], a["precision"]) == ("default", 1, device[1])
    assert (b["strategy"], b["replicas"], b["precision"]) == ("mirrored", 2, "float32")
    assert a["preset"]["name"] == b["preset"]["name"] == "tiny"


@pytest.mark.slow
def test_a_tiny_run_trains_mirrored_over_two_logical_cpus_by_itself(tmp_path):
    """No --strategy: `train` finds two devices, mirrors over them, trains and checkpoints."""
    run = tmp_path / "m"
    code = f"""
from bachgan.train import train
s = train({str(run)!r}, preset="tiny", iterations=5, log=print)
print("STATE", s["state"], s["iteration"])
"""
    out = _in_logical_cpus(2, code)
    assert "STATE finished 5" in out, out[-2000:]
    config = json.loads((run / "config.json").read_text())
    assert (config["strategy"], config["replicas"]) == ("mirrored", 2)
    assert "as 2 logical devices" in config["device"]
    assert (run / "checkpoints" / "ckpt-000005").is_dir()
    assert (run / "exports" / "export-000005").is_dir()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5]
    # A resume keeps the run's own settings, whatever the machine would choose now.
    resumed = subprocess.run(
        [sys.executable, "-m", "bachgan", "train", "--run-dir", str(run), "--resume"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = json.loads((run / "config.json").read_text())
    assert (again["strategy"], again["precision"]) == ("mirrored", config["precision"])
    assert again["replicas"] == 1  # this process sees one CPU: mirrored over it alone
