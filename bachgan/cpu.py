"""This machine's CPU as Linux describes it (/proc/cpuinfo): its name, its clock, and the
instruction sets that decide which arithmetic is fast. Read once per process, without
TensorFlow, so the Train page can ask too."""

from __future__ import annotations

import functools
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BFLOAT16_FLAGS = {"avx512_bf16", "amx_bf16"}  # native bfloat16 dot products


def parse(text: str) -> dict:
    """The first core's 'model name', 'cpu MHz' and 'flags' (every core lists the same)."""
    out: dict = {"name": None, "mhz": None, "flags": frozenset()}
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and out["name"] is None:
            out["name"] = value
        elif key == "cpu MHz" and out["mhz"] is None:
            try:
                out["mhz"] = float(value)
            except ValueError:
                pass
        elif key == "flags" and not out["flags"]:
            out["flags"] = frozenset(value.split())
    return out


@functools.cache
def info() -> dict:
    """`parse` of this machine's /proc/cpuinfo; empty fields where there is none (not Linux)."""
    try:
        return parse(CPUINFO.read_text(errors="replace"))
    except OSError:
        return parse("")


def native_bfloat16(cpu: dict | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16): only there is
    `train --precision mixed_bfloat16` faster; elsewhere TensorFlow emulates it, much slower."""
    return bool(BFLOAT16_FLAGS & (cpu or info())["flags"])
