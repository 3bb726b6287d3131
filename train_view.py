"""What the Train page shows about runs and presets: labels, help texts, times.

`bachgan.runs` finds, reads, starts and stops runs; the words and formats a person sees about
them live here, beside app_state.py, so that the library holds no presentation. No Streamlit
here either: the tests call these directly.
"""

from __future__ import annotations

import math
from datetime import datetime

from bachgan import runs
from bachgan.describe import METRIC_WORDS
from bachgan.metrics import HEADLINE
from bachgan.train import STATUS_TIME

# One entry per preset in bachgan.presets.PRESETS, as runs.MAX_ITERATIONS (a test checks).
PRESET_LABEL = {
    "seed": "seed - the original article's model (for a GPU)",
    "cpu": "cpu - small, trains on an ordinary computer",
    "mid": "mid - between the two, for a longer run",
    "chorale": "chorale - mid that knows the key, the phrase ends and the meter",
    "tiny": "tiny - a toy, for trying the controls",
}
PRESET_HELP = {
    "seed": "The original article's model, unchanged: an 8-million-parameter generator over "
    "128 pitches that harmonizes a soprano melody. Meant for a GPU.",
    "cpu": "A smaller model (64 pitches) that can be given any of the four voices.",
    "mid": "Like 'cpu' with twice the filters and twice the batch (a 1.8-million-parameter "
    "generator).",
    "chorale": "'mid' that is also told each passage's key and mode, where the phrases end and "
    "where the bar lines fall, trained on the chorales in 3/4 too, and saved as a smoothed "
    "average of its weights; the shipped model uses it.",
    "tiny": "A toy model that trains in seconds, for trying the page and for tests (at most "
    "1000 iterations). Its music stays poor.",
}


def _machine(result: dict) -> str:
    """The machine a `runs.benchmark` result was measured on, as the help texts name it."""
    cores = (result.get("machine") or {}).get("cores")
    return f"the project's {cores}-core CPU" if cores else "the project's CPU"


def preset_help(preset: str) -> str:
    """What the Train page says about a preset, with its measured speed when there is one."""
    result = runs.benchmark(preset)
    seconds = runs.step_seconds(result)
    if seconds is None:
        return PRESET_HELP[preset]
    return (
        f"{PRESET_HELP[preset]} On {_machine(result)} a training step took "
        f"{seconds:.2g} s; saving samples and checkpoints adds to that."
    )


def bfloat16_help() -> str:
    """What the Train page says about bfloat16, with the speed-ups `bench` measured on the
    project's CPU (benchmarks/P.json) where there are some."""
    text = (
        "Trains faster by doing most of the arithmetic with fewer digits (bfloat16), which "
        "this computer's processor handles natively. In our comparison the music came out as "
        "good; the numbers differ slightly from a standard run, so the run can be repeated "
        "exactly only with this box ticked again. The saved model is the same kind either "
        "way, and a resumed run keeps this setting."
    )
    gains, machine = [], ""
    for preset in PRESET_HELP:
        result = runs.benchmark(preset)  # one read per preset
        plain, bf16 = runs.step_seconds(result), runs.step_seconds(result, "mixed_bfloat16")
        if plain and bf16:
            gains.append(f"{plain / bf16:.1f}x as fast at {preset}")
            machine = machine or _machine(result)
    if gains:
        text += f" Measured on {machine}: {', '.join(gains)}."
    return text


def device_words(device: str | None, running: bool) -> str:
    """A run's "device" (config.json, bachgan.devices) as the run's panel says it:
    'Training on **GPU: NVIDIA A100**'. Runs from before the GPU names said 'GPU x2'."""
    device = (device or "").strip()
    if device.startswith("GPU x"):
        n = device.removeprefix("GPU x")
        device = "GPU" if n == "1" else f"{n} GPUs"
    verb = "Training on" if running else "Trained on"
    return f"{verb} **{device or '…'}**"


def gpu_suggestion(gpus) -> str:
    """What the start form says where TensorFlow lists a GPU (bachgan.devices.gpus())."""
    from bachgan.devices import gpu_precision

    fast = gpu_precision(list(gpus)) != "float32"
    arithmetic = (
        "bfloat16, which it computes natively"
        if fast
        else "float32 (bfloat16 needs an NVIDIA GPU of the Ampere generation or newer)"
    )
    names = ", ".join(sorted({g.name for g in gpus}))
    which = f"a GPU ({names})" if len(gpus) == 1 else f"{len(gpus)} GPUs ({names})"
    several = " Runs use every GPU at once (mirrored)." if len(gpus) > 1 else ""
    return (
        f"This computer has {which}. The original article's model (seed) is suggested: it is "
        f"what a GPU is for. Arithmetic: {arithmetic}.{several}"
    )


def readable_time(stamp: str) -> str:
    """status.json's ISO time ('2026-11-26T12:17:50+0000') as '26 Nov 2026 12:17 UTC';
    anything unparsable is shown as it is."""
    try:
        when = datetime.strptime(stamp, STATUS_TIME)
    except (TypeError, ValueError):
        return stamp or ""
    return f"{when:%d %b %Y %H:%M} {when.tzname() or ''}".strip()


def format_seconds(s: float | None) -> str:
    """A duration as '42 s', '3 min 05 s' or '2 h 07 min'; '' when unknown."""
    if s is None or not math.isfinite(s):
        return ""
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def run_row(info: runs.RunInfo) -> dict:
    """One row of the runs table, under the column names the page shows."""
    return {
        "run": info.name,
        "state": info.effective_state,
        "progress": f"{info.iteration:,} / {info.iterations:,}" if info.iterations else "",
        "preset": info.preset,  # the device is in the run's own panel: fewer columns fit
        "started": readable_time(info.started),  # the last update is in the run's panel
        "time left": format_seconds(info.eta_seconds) if info.running else "",
        "model saved": info.has_export,
    }


# ---------------------------------------------------------------- training in words

# The loss chart's panels (bachgan.curves.LOSSES) as a learner reads them; the technical
# name stays in brackets and in the hover labels.
CURVE_TITLES = {
    "Critic loss": "Critic's own score (critic loss)",
    "Generator loss": "Generator's score (generator loss)",
    "Wasserstein estimate": "Gap: Bach vs generator (Wasserstein)",
    "Gradient penalty": "Critic's smoothness (gradient penalty)",
}
# The musical panels (bachgan.metrics.HEADLINE's names) in plain words, as on Harmonize.
MUSIC_TITLES = {label: METRIC_WORDS.get(key, label).capitalize() for key, label in HEADLINE}
WHAT_HAPPENS = (
    "At every iteration the **critic** listens to excerpts of Bach's chorales and to the "
    "**generator**'s harmonizations of the same melodies, and learns to tell them apart; "
    "then the generator adjusts itself so that the critic takes its harmonizations for "
    "Bach's. As the generator gets better, the critic finds it harder to tell them apart."
)
STEADY = 0.05  # a gap that moved less than this share is "holding steady"


def gap_trend(rows: list[dict], min_points: int = 20) -> str:
    """Whether the critic's gap between Bach and the generator (the Wasserstein estimate) has
    shrunk, grown or held over the recent iterations: the mean of the last fifth of the
    curve against the fifth before it (a single iteration is too noisy to say)."""
    from bachgan.curves import series

    x, y = series(rows, "wasserstein")
    if len(y) < min_points:
        return (
            "Too early to say whether it is getting better: the curves need a few dozen iterations."
        )
    k = max(len(y) // 5, min_points // 2)
    before, recent = float(y[-2 * k : -k].mean()), float(y[-k:].mean())
    span = f"{int(x[-1] - x[-2 * k]):,}"
    change = (recent - before) / max(abs(before), 1e-9)
    if abs(change) < STEADY:
        return (
            f"Over the last {span} iterations the critic's gap between Bach and the generator "
            f"has held steady (around {recent:.2g}): the two are evenly matched for now."
        )
    if change < 0:
        return (
            f"Over the last {span} iterations the critic's gap between Bach and the generator "
            f"has shrunk by {-change:.0%} (from {before:.2g} to {recent:.2g}): the generator "
            "is getting closer to Bach."
        )
    return (
        f"Over the last {span} iterations the critic's gap between Bach and the generator "
        f"has grown by {change:.0%} (from {before:.2g} to {recent:.2g}): the critic is "
        "learning faster than the generator for now, which is usual early on; it should "
        "level off or shrink later."
    )


def music_progress(rows: list[dict]) -> str | None:
    """How many musical checks meet their Bach-like target now, against the first time they
    were measured; which are still off. None before the first measurement."""
    from bachgan.curves import MUSIC_KEYS
    from bachgan.metrics import TARGETS

    measured = [r for r in rows if any(f"music/{k}" in r for k in MUSIC_KEYS)]
    if not measured:
        return None

    def checks(row: dict) -> tuple[int, int, list[str]]:
        met, n, off = 0, 0, []
        for k in MUSIC_KEYS:
            x = row.get(f"music/{k}")
            if isinstance(x, (int, float)) and math.isfinite(x) and k in TARGETS:
                n += 1
                lo, hi = TARGETS[k]
                if lo <= x <= hi:
                    met += 1
                else:
                    off.append(METRIC_WORDS.get(k, k))
        return met, n, off

    first, last = measured[0], measured[-1]
    met, n, off = checks(last)
    text = (
        f"At iteration {last['iteration']:,}, {met} of {n} musical checks are within "
        "Bach-like targets"
    )
    if last is not first:
        text += f" ({checks(first)[0]} at iteration {first['iteration']:,})"
    text += f"; still off: {', '.join(off)}." if off else "."
    return text


def learning_words(rows: list[dict]) -> list[str]:
    """What training is doing and whether it is getting better, for a learner."""
    out = [WHAT_HAPPENS]
    if not rows:
        return out + ["No iterations yet: the first figures come after the first one."]
    out.append(gap_trend(rows))
    music = music_progress(rows)
    if music:
        out.append(music)
    return out
