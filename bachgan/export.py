"""Generator exports: weights plus the preset that rebuilds the architecture.

Loading never unpickles or runs code from a file: the architecture comes from our
own code (`build_generator`) and the file supplies only weights (HDF5) and JSON.
"""

from __future__ import annotations

from pathlib import Path

from bachgan.runs_io import atomic_dir, atomic_write_json, complete_dirs, read_json

WEIGHTS = "generator.weights.h5"
CARD = "model.json"


def write_export(generator, preset, folder: str | Path, **info) -> Path:
    """Write an export folder atomically: generator.weights.h5 + model.json."""
    with atomic_dir(folder) as tmp:
        generator.save_weights(str(tmp / WEIGHTS))
        atomic_write_json(tmp / CARD, {"preset": preset.to_dict(), **info})
    return Path(folder)


def resolve_export(path: str | Path) -> Path:
    """An export folder, a run directory (its newest export) or a weights file -> folder."""
    path = Path(path)
    if path.is_file() and path.name == WEIGHTS:
        path = path.parent
    if (path / WEIGHTS).is_file() and (path / CARD).is_file():
        return path
    exports = complete_dirs(path / "exports", "export")
    if exports:
        return exports[-1]
    raise FileNotFoundError(f"no generator export found at {path}")


def load_generator(path: str | Path):
    """-> (keras generator, its Preset, card dict). `path` as in `resolve_export`."""
    from bachgan.model import build_generator
    from bachgan.presets import Preset

    folder = resolve_export(path)
    card = read_json(folder / CARD)
    if not isinstance(card, dict) or not isinstance(card.get("preset"), dict):
        raise ValueError(f"{folder / CARD} is missing or unreadable")
    try:
        preset = Preset.from_dict(card["preset"])
        generator = build_generator(preset)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{folder / CARD} does not describe a BachGAN model: {err}") from None
    generator.load_weights(str(folder / WEIGHTS))
    card["path"] = str(folder)
    if folder.parent.name == "exports":  # runs/<name>/exports/export-N: name the run
        card.setdefault("run", folder.parent.parent.name)
    evaluation = read_json(folder / "evaluation.json")  # written by `bachgan ship`
    if isinstance(evaluation, dict):
        card["evaluation"] = evaluation
    return generator, preset, card
