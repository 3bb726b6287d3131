"""Ship a trained run as the app's model: copy its export and write its model card.

`python -m bachgan ship --run-dir runs/cpu` copies the run's newest generator export
to checkpoints/ (the app's model, `sampling.SHIPPED_DIR`, unless --dest says otherwise),
evaluates it (`bachgan.evaluate`) and writes
evaluation.json, MODEL_CARD.md and the run's training curve (training_curve.jsonl)
beside it, so every figure in the card comes from a command anyone can rerun.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

from bachgan import metrics
from bachgan.presets import run_precision
from bachgan.runs_io import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    read_jsonl,
    rewrite_jsonl,
)
from bachgan.sampling import SHIPPED_DIR as SHIPPED
from bachgan.train import trained_seconds
from bachgan.voices import VOICE_NAMES


def training_summary(run_dir: Path, iteration: int) -> dict:
    """Iterations, wall time and machine of a run up to `iteration`, from its own logs."""
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("iteration", 0) <= iteration]
    config = read_json(run_dir / "config.json", {})
    times = [r["time"] for r in rows if "time" in r]
    return {
        "iterations": iteration,
        "train_seconds": round(trained_seconds(rows), 1),
        "wall_seconds": round(times[-1] - times[0], 1) if len(times) > 1 else None,
        "device": config.get("device"),
        "versions": config.get("versions"),
        "seed": config.get("seed"),
        "data": config.get("data"),
        "split_sizes": {k: len(v) for k, v in (config.get("split") or {}).items()},
        "test_chorales": (config.get("split") or {}).get("test", []),
        "skipped": dict(Counter(_reason(v) for v in (config.get("skipped") or {}).values())),
        "preset": config.get("preset"),
        "jit_compile": bool(config.get("jit_compile")),
        "precision": run_precision(config),
        "strategy": config.get("strategy"),
        "minutes": config.get("minutes"),
    }


def reproduce_command(t: dict, run_dir: str) -> str:
    """The `train` command that makes this run again (a time budget, if it had one)."""
    p = t.get("preset") or {}
    cmd = f"python -m bachgan train --run-dir {run_dir} --preset {p.get('name')}"
    if t.get("minutes"):
        cmd += f" --minutes {t['minutes']:g}"
    else:
        cmd += f" --iterations {t['iterations']}"
    cmd += f" --seed {t.get('seed', 0)}"
    if t.get("jit_compile"):
        cmd += " --jit"
    # Named always: left out, `train` picks the precision (and strategy) for the machine.
    cmd += f" --precision {run_precision(t)}"
    if t.get("strategy") == "mirrored":
        cmd += " --strategy mirrored"
    return cmd


def test_chorales_trained_on(run_dir: Path, result: dict) -> list[str] | None:
    """The evaluation's test chorales that the run trained on, in any session, by chorale id
    (older runs recorded ids like 'bwv281.krn'); None when the run did not train on the
    music21 corpus, whose ids these are."""
    from bachgan.data import chorale_id

    config = read_json(run_dir / "config.json", {})
    if config.get("data", "music21") != "music21":
        return None
    trained = (config.get("split") or {}).get("train", []) + config.get("train_earlier", [])
    return sorted(set(result["test_chorales"]) & {chorale_id(n) for n in trained})


def _overlap_note(result: dict) -> str:
    """Whether the run trained on any chorale the evaluation holds out (checked, not assumed)."""
    if "test_chorales_trained_on" not in result:
        return ""
    seen = result["test_chorales_trained_on"]
    if seen is None:
        return "Not checked against the run's training data, which is not the music21 corpus."
    if not seen:
        return "None of these chorales is in the run's training split."
    return f"The run trained on {len(seen)} of them ({', '.join(seen)}): their figures flatter it."


def _reason(why: str) -> str:
    return (
        "meter not 16 sixteenths a bar"
        if why.startswith("meter")
        else ("not exactly four parts" if "parts" in why else why)
    )


class ShipInputError(ValueError):
    """Inputs `ship` cannot use, one line each (the CLI prints them and exits with 2)."""

    def __init__(self, lines: list[str]):
        super().__init__("; ".join(lines))
        self.lines = lines


def _load_models(paths) -> list:
    """A Harmonizer per path, or ShipInputError naming every one that does not load."""
    from bachgan.sampling import Harmonizer

    models, bad = [], []
    for path in paths:
        try:
            models.append(Harmonizer(path))
        except Exception as err:  # missing, damaged or crafted: each fails its own way
            bad.append(f"{path}: cannot load the model: {err}")
    if bad:
        raise ShipInputError(bad)
    return models


def ship(
    run_dir,
    dest: Path = SHIPPED,
    max_windows: int | None = None,
    log=print,
    compare=(),
    iteration: int | None = None,
) -> Path:
    """Copy, evaluate, write the card. `compare`: other runs (e.g. the seed's recipe trained
    for the same time) evaluated the same way, for the card's comparison table. `iteration`:
    the run's export of that iteration (one chosen on the valid split), else its newest.

    Every model is loaded before anything is written, and the new folder is built complete
    beside `dest` and swapped in at the end: a bad input or a failure on the way leaves the
    model already at `dest` (often the app's) as it was."""
    from bachgan.evaluate import ablation, evaluate

    run_dir, dest = Path(run_dir), Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ShipInputError([f"{dest}: --dest is a file, not a folder"])
    chosen = run_dir / "exports" / f"export-{iteration:06d}" if iteration else run_dir
    if iteration and not chosen.is_dir():
        raise ShipInputError([f"{run_dir}: no export of iteration {iteration} in exports/"])
    harmonizer, *others = _load_models([chosen, *compare])
    export = Path(harmonizer.card["path"])
    summary = training_summary(run_dir, harmonizer.card.get("iteration", 0))
    with atomic_dir(dest) as tmp:
        for f in export.iterdir():
            shutil.copy(f, tmp / f.name)
        result = _evaluate(harmonizer, dest, max_windows, log)
        result["training"] = summary
        result["test_chorales_trained_on"] = test_chorales_trained_on(run_dir, result)
        result["shipped_as"] = dest.name
        result["chosen_iteration"] = iteration
        result["compared"] = []
        for other, h in zip(map(Path, compare), others):
            log(f"evaluating {other} for comparison ...")
            row = evaluate(h, max_windows=max_windows)
            few = {"max_windows": min(max_windows, 120)} if max_windows else {}
            row["ablation"] = ablation(h, **few)
            row["training"] = training_summary(other, h.card.get("iteration", 0))
            result["compared"].append(row)
        atomic_write_json(tmp / "evaluation.json", result)
        curve = [
            r
            for r in read_jsonl(run_dir / "metrics.jsonl")
            if r.get("iteration", 0) <= summary["iterations"]
            and (r["iteration"] % 10 == 0 or any(k.startswith("music/") for k in r))
        ]
        rewrite_jsonl(tmp / "training_curve.jsonl", curve)
        atomic_write_bytes(tmp / "MODEL_CARD.md", model_card(result).encode())
    log(f"shipped {export} -> {dest}")
    return dest


def model_card(result: dict) -> str:
    t = result["training"]
    p = t["preset"] or {}
    rows = result["rows"]
    main = {
        "this model": rows["model/all"],
        "Bach (test split)": rows["bach/all"],
        "Bach's lower voices from another window": rows["bach_shuffled_lower"],
        "random notes in range": rows["random"],
    }
    per_voice = {k.removeprefix("model/"): v for k, v in rows.items() if k.count("/") == 2}
    loc = result["latent_locality"]
    noise = result["ablation"]["noise + voice-leading clean-up (no model)"]
    model = result["ablation"]["model + voice-leading clean-up (default)"]
    noise_note = (
        f"chord-tone rate {noise['chord_tone_rate']:.2f} (model {model['chord_tone_rate']:.2f}), "
        f"in key {noise['in_key_rate']:.2f} ({model['in_key_rate']:.2f}), and "
        f"{noise['onsets_per_bar_lower']:.1f} onsets per bar ({model['onsets_per_bar_lower']:.1f}; "
        f"Bach {rows['bach/all']['onsets_per_bar_lower']:.1f}): the rhythm and the choice "
        "among chord tones come from the model."
    )
    hours = t["train_seconds"] / 3600
    name = result.get("shipped_as", SHIPPED.name)
    runs = [f"runs/{_run_name(r)}" for r in [result, *result.get("compared", [])]]
    ship_cmd = f"python -m bachgan ship --run-dir {runs[0]}"
    if result.get("chosen_iteration"):
        ship_cmd += f" --iteration {result['chosen_iteration']}"
    ship_cmd += "".join(f" --compare {r}" for r in runs[1:])
    again = _reevaluated_note(result, name)
    if name != SHIPPED.name:
        ship_cmd += f" --dest checkpoints/{name}"
    return f"""# BachGAN model card: `{name}`

A conditional WGAN-GP generator (U-Net) that writes alto, tenor and bass around a given
voice — or any three voices around any one of soprano, alto, tenor or bass.

## Training
- Data: {t["data"]} — Bach's four-part chorales from the music21 corpus, 16th-note grid,
  every 2-bar window with a hop of one bar, transposed on the fly by
  {p.get("transpose")} semitones. Chorales in the run's split: {t["split_sizes"]} (by
  chorale id hash, see `bachgan.data.split_of`). Skipped: {t["skipped"]}.
- Preset `{p.get("name")}`: {p.get("n_pitches")} pitch rows from MIDI {p.get("low")},
  filters {p.get("filters")}, z {p.get("z_channels")} channels, batch {p.get("batch_size")},
  condition voices {p.get("condition_voices")}, {p.get("critic_steps")} critic steps per
  generator step, penalty weight {p.get("gp_weight")}, Adam lr {p.get("learning_rate")}
  betas {p.get("beta_1")}/{p.get("beta_2")}. Seed {t["seed"]}.
- Iterations: {t["iterations"]}; {t["train_seconds"]:.0f} s ({hours:.2f} h) in training steps,
  {t["wall_seconds"] or 0:.0f} s from first to last logged iteration (with checkpoints, samples
  and metrics), on {t["device"]}. Versions: {t["versions"]}.
- Reproduce: `{reproduce_command(t, runs[0])}`, then
  `{ship_cmd}`.

## Quality (`python -m bachgan evaluate --checkpoint checkpoints/{name}`)
{again}Held-out melodies: every voice the model accepts from {result["windows"]} two-bar windows of
the {len(result.get("test_chorales", [])) or "held-out"} test chorales, plus the built-in tunes
({", ".join(result["tunes"])}); default clean-up; metrics on the three generated voices; mean
over condition voices. {_overlap_note(result)}

{metrics.headline_table(main)}

Per condition voice and source:

{metrics.headline_table(per_voice)}

## What the clean-up does and how much the model contributes
{metrics.headline_table(result["ablation"])}

The last column feeds uniform noise instead of the generator's scores through the same
clean-up, to show what the rules do on their own: {noise_note}

## Latent space
Re-rolling bar 1's latent row: bar 1 takes {loc["raw_share_bar1"]:.0%} of the change in the
generator's scores; after clean-up {loc["cleaned_changed_bar1"]:.0%} of generated notes in bar 1
and {loc["cleaned_changed_bar2"]:.0%} in bar 2 change ({loc["melodies"]} held-out melodies).

{whole_section(result)}{comparison_section(result)}Evaluation data in `evaluation.json`.
"""


def _evaluate(harmonizer, dest: Path, max_windows: int | None, log=print) -> dict:
    """Every figure of the card for a model with today's decoding: windows, ablations,
    latent locality, whole test chorales (each voice given) and the clean-up's terms."""
    from bachgan import whole_ablation
    from bachgan.data import load_corpus
    from bachgan.evaluate import ablation, evaluate, latent_locality
    from bachgan.whole_eval import evaluate_whole, jsonable

    log("evaluating on held-out melodies ...")
    result = evaluate(harmonizer, max_windows=max_windows)
    result["model"]["path"] = str(dest)  # the shipped copy, not the run's export
    log("ablations ...")
    few = {"max_windows": min(max_windows, 120)} if max_windows else {}  # `--windows`: quick
    result["ablation"] = ablation(harmonizer, **few)
    result["latent_locality"] = latent_locality(harmonizer, n=min(max_windows or 60, 60))
    log("whole held-out chorales, each voice given in turn ...")
    voices = harmonizer.preset.condition_voices
    quick = {"max_chorales": max(6, max_windows // 4), "draws": 2} if max_windows else {}
    voices = voices[:1] if quick else voices
    result["whole"] = jsonable(evaluate_whole(harmonizer, split="test", voices=voices, **quick))
    if not quick:  # the clean-up's terms one at a time, where they were tuned
        log("the clean-up's whole-piece terms, on the valid split ...")
        result["whole_ablation"] = jsonable(whole_ablation.ablation(harmonizer, load_corpus()))
    return result


def reevaluate(dest: Path = SHIPPED, max_windows: int | None = None, log=print) -> Path:
    """Evaluate a shipped model again in place, with today's clean-up, and rewrite its card
    and evaluation.json; what the card says of training (kept from shipping) stays. For a
    change of decoding when the run the model came from is no longer at hand. Written as a
    whole at the end: a failure leaves the folder as it was."""
    from bachgan.sampling import Harmonizer

    dest = Path(dest)
    try:
        before = json.loads((dest / "evaluation.json").read_text())
        harmonizer = Harmonizer(dest)
    except (OSError, ValueError) as err:
        raise ShipInputError([f"{dest}: not a shipped model ({err})"]) from None
    result = _evaluate(harmonizer, dest, max_windows, log)
    kept = ("training", "test_chorales_trained_on", "shipped_as", "chosen_iteration", "compared")
    result.update({k: before[k] for k in kept if k in before})
    result["reevaluated"] = time.strftime("%Y-%m-%d", time.gmtime())
    with atomic_dir(dest) as tmp:
        for f in dest.iterdir():
            if f.is_file() and f.name not in ("evaluation.json", "MODEL_CARD.md"):
                shutil.copy(f, tmp / f.name)
        atomic_write_json(tmp / "evaluation.json", result)
        atomic_write_bytes(tmp / "MODEL_CARD.md", model_card(result).encode())
    log(f"re-evaluated {dest}")
    return dest


def _reevaluated_note(result: dict, name: str) -> str:
    """Where the figures were remade after shipping, with a later clean-up."""
    if "reevaluated" not in result:
        return ""
    return (
        f"Evaluated again on {result['reevaluated']} with that day's clean-up "
        f"(`python -m bachgan ship --reevaluate --dest checkpoints/{name}`); the weights "
        "are those shipped.\n"
    )


def whole_section(result: dict) -> str:
    """The card's whole-piece tables (`evaluate --whole --split test`), where evaluated."""
    from bachgan.whole_eval import tables

    if "whole" not in result:
        return ""
    return f"""## Whole pieces (`python -m bachgan evaluate --whole --split test --all-voices`)
Each held-out test chorale's melody harmonized whole (its key read off the melody, its
fermatas as phrase ends), against the distributions of Bach's training chorales; rows as
`bachgan.whole_eval` describes them.

{tables(result["whole"])}
{_ablation_section(result)}
"""


def _ablation_section(result: dict) -> str:
    from bachgan.whole_ablation import table

    if "whole_ablation" not in result:
        return ""
    return f"""
### The clean-up's whole-piece terms, one at a time (valid split, soprano given)
`python scripts/decoder_ablation.py --checkpoint checkpoints/{result.get("shipped_as", "")}`;
the weights were chosen on this split.

{table(result["whole_ablation"])}
"""


def _run_name(result: dict) -> str:
    """The run an evaluated model came from (its folder under runs/)."""
    from bachgan.evaluate import model_label

    return result["model"].get("run") or model_label(result).split()[0]


def comparison_section(result: dict) -> str:
    """The card's table of this model against other recipes (`ship --compare`), if any."""
    from bachgan.evaluate import comparison_table, model_label

    compared = result.get("compared") or []
    if not compared:
        return ""
    raw = {
        f"{model_label(r)}, raw": r["ablation"]["model, raw (no clean-up)"]
        for r in [result, *compared]
    }
    raw["Bach (test split)"] = result["rows"]["bach/all"]
    soprano = {
        f"{model_label(r)}, {source}": r["rows"][f"model/soprano/{source}"]
        for source in ("chorales", "tunes")
        for r in [result, *compared]
        if f"model/soprano/{source}" in r["rows"]
    }
    soprano["Bach (test split, soprano given)"] = result["rows"]["bach/soprano"]
    lines = []
    for r in [result, *compared]:
        t, p = r["training"], r["training"].get("preset") or {}
        voices = ", ".join(VOICE_NAMES[v] for v in p.get("condition_voices", []))
        run = _run_name(r)
        lines.append(
            f"- {model_label(r)}: preset `{p.get('name')}`, given voice(s) {voices}, "
            f"transposition {p.get('transpose')}, {t['train_seconds'] / 60:.0f} min of "
            f"training steps on {t['device']}: `{reproduce_command(t, f'runs/{run}')}`."
        )
    return f"""## Compared with other recipes
The same evaluation of other runs, each averaged over the voices it can take as given:

{chr(10).join(lines)}

{comparison_table([result, *compared])}

Given the soprano only, the one voice the seed's recipe learns (chorales: the held-out
windows; tunes: the built-in tunes):

{metrics.headline_table(soprano)}

The generators alone, without the clean-up (the raw reading of each one's scores, on the
held-out windows of the clean-up table above, averaged over the voices each model takes):

{metrics.headline_table(raw)}

"""
