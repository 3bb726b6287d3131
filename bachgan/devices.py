"""What a training run computes on, and the settings that suit it.

`train` fills in what the person left unset from `plan()`: the GPUs when TensorFlow lists
any, else the CPU; a precision and a preset for that device; a mirrored strategy when there
are several devices of the kind. `choose` is the rule itself, a pure function, so that it can
be read and tested apart from the machine it runs on.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from dataclasses import dataclass

from bachgan import cpu
from bachgan.presets import DEFAULT_PRECISION

BF16_CAPABILITY = (8, 0)  # NVIDIA Ampere and later: bfloat16 tensor cores
GPU_PRESET = "seed"  # the original article's model: sized for a GPU
CPU_PRESET = "cpu"  # today's default: trains on an ordinary computer


@dataclass(frozen=True)
class Gpu:
    """One physical GPU as TensorFlow describes it."""

    name: str  # e.g. "NVIDIA A100-SXM4-40GB"
    capability: tuple[int, int] | None  # CUDA compute capability; None where not reported


@dataclass(frozen=True)
class Plan:
    """The device a run trains on and the defaults that suit it."""

    kind: str  # "GPU" or "CPU"
    devices: tuple[str, ...]  # TensorFlow's logical device names, e.g. "/device:GPU:0"
    label: str  # config.json's "device": what a person reads
    precision: str
    preset: str
    strategy: str  # "mirrored" across several devices, else "default"


def gpu_precision(gpus: list[Gpu]) -> str:
    """bfloat16 where every GPU computes it natively (compute capability 8.0+), else float32.
    float16 is not offered: it needs loss scaling on both the penalty's and the updates'
    gradients (README, "Training on a GPU")."""
    ok = gpus and all(g.capability and tuple(g.capability) >= BF16_CAPABILITY for g in gpus)
    return "mixed_bfloat16" if ok else DEFAULT_PRECISION


def cpu_precision(info: dict | None = None) -> str:
    """bfloat16 only on a CPU with native bfloat16 (AVX512-BF16, AMX); elsewhere TensorFlow
    emulates it, much slower (see `bench`)."""
    return "mixed_bfloat16" if cpu.native_bfloat16(info) else DEFAULT_PRECISION


def gpu_label(gpus: list[Gpu]) -> str:
    """'GPU: NVIDIA A100-SXM4-40GB', or '2 GPUs: NVIDIA A100-SXM4-40GB' for several alike."""
    names = sorted({g.name for g in gpus}) or ["unnamed"]
    head = "GPU" if len(gpus) == 1 else f"{len(gpus)} GPUs"
    return f"{head}: {', '.join(names)}"


def cpu_label(n_logical: int = 1, info: dict | None = None, cores: int | None = None) -> str:
    """'CPU (2 cores, AMD EPYC 9R14)', as config.json has always said; logical devices
    (TensorFlow's split of one CPU) are named when there are several."""
    name = (info or cpu.info())["name"] or "CPU"
    text = f"CPU ({cores or os.cpu_count()} cores, {name})"
    return text if n_logical < 2 else f"{text}, as {n_logical} logical devices"


def choose(gpus: list[Gpu], logical: list[str], cpu_info: dict | None = None) -> Plan:
    """The rule. `gpus`: the physical GPUs; `logical`: the logical devices of the kind
    training uses (GPUs when there are any, else CPUs)."""
    if gpus:
        kind, label, precision, preset = "GPU", gpu_label(gpus), gpu_precision(gpus), GPU_PRESET
    else:
        kind, label = "CPU", cpu_label(len(logical), cpu_info)
        precision, preset = cpu_precision(cpu_info), CPU_PRESET
    strategy = "mirrored" if len(logical) >= 2 else "default"
    return Plan(kind, tuple(logical), label, precision, preset, strategy)


def _cpu_only_tensorflow() -> bool:
    """Whether the installed TensorFlow is the CPU-only wheel (requirements.txt's), which is
    built without CUDA and so never lists a GPU: then there is no need to import it."""

    def installed(dist: str) -> bool:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            return False
        return True

    return installed("tensorflow-cpu") and not installed("tensorflow")


@functools.cache
def gpus() -> tuple[Gpu, ...]:
    """The physical GPUs TensorFlow lists. Neither this nor their details start TensorFlow's
    runtime, so the app can ask without taking a GPU's memory."""
    if _cpu_only_tensorflow():
        return ()
    import tensorflow as tf

    out = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        capability = details.get("compute_capability")
        out.append(Gpu(details.get("device_name") or device.name, capability))
    return tuple(out)


@functools.cache
def plan() -> Plan:
    """`choose` for this machine. Lists TensorFlow's logical devices, which starts its
    runtime: a logical device split (tf.config.set_logical_device_configuration) must come
    before."""
    import tensorflow as tf

    found = list(gpus())
    logical = tf.config.list_logical_devices("GPU" if found else "CPU")
    return choose(found, [d.name for d in logical])
