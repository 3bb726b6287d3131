"""Shipping a run: the copied export, its evaluation and the model card built from it."""

from __future__ import annotations

import json

from bachgan.card import ship
from bachgan.sampling import Harmonizer


def test_ship_copies_evaluates_and_writes_the_card_with_a_comparison(tiny_export, tmp_path):
    dest = tmp_path / "checkpoints" / "shipped"
    ship(tiny_export, dest, max_windows=2, log=lambda *a: None, compare=[tiny_export])
    names = {"generator.weights.h5", "model.json", "evaluation.json", "MODEL_CARD.md"}
    assert names <= {f.name for f in dest.iterdir()}
    assert Harmonizer(dest).card["iteration"] == 5, "the copy loads as a model"

    evaluation = json.loads((dest / "evaluation.json").read_text())
    assert evaluation["training"]["iterations"] == 5
    assert {"model/all", "bach/all", "random"} <= set(evaluation["rows"])
    assert len(evaluation["compared"]) == 1
    assert evaluation["compared"][0]["training"]["preset"]["name"] == "tiny"

    card = (dest / "MODEL_CARD.md").read_text()
    assert "Iterations: 5;" in card and "## Compared with other recipes" in card
    table = card.split("## Compared with other recipes")[1]
    header = next(line for line in table.splitlines() if line.startswith("| metric"))
    assert "shipped (tiny, 5 it.)" in header and "tiny (tiny, 5 it.)" in header
    chord = f"{evaluation['rows']['model/all']['chord_tone_rate']:.2f}"
    assert chord in next(line for line in table.splitlines() if line.startswith("| chord"))
    assert "tiny (tiny, 5 it.), raw" in table, "what each generator does without clean-up"
    assert (
        "`python -m bachgan train --run-dir runs/tiny --preset tiny --iterations 5 --seed 3`"
        in table
    )


def _contents(folder):
    return {f.name: f.read_bytes() for f in folder.iterdir()}


def test_a_bad_input_or_a_failure_leaves_the_shipped_model_as_it_was(
    tiny_export, tmp_path, monkeypatch
):
    """A mistyped --compare replaced the folder first and failed after the evaluation,
    leaving the app's model without its card; now inputs are loaded first and the new
    folder is swapped in only when complete."""
    import shutil

    import pytest

    from bachgan import evaluate
    from bachgan.card import ShipInputError
    from bachgan.sampling import SHIPPED_DIR

    dest = tmp_path / "shipcopy"
    shutil.copytree(SHIPPED_DIR, dest)
    before = _contents(dest)
    quiet = {"max_windows": 2, "log": lambda *a: None}
    with pytest.raises(ShipInputError) as err:
        ship(tiny_export, dest, compare=[tmp_path / "typo", tmp_path / "typo2"], **quiet)
    assert len(err.value.lines) == 2 and "typo2: cannot load the model" in err.value.lines[1]
    with pytest.raises(ShipInputError, match="cannot load the model"):
        ship(tmp_path / "no-run", dest, **quiet)
    assert _contents(dest) == before

    def broken(*a, **k):
        raise RuntimeError("a failure after the evaluation")

    monkeypatch.setattr(evaluate, "latent_locality", broken)
    with pytest.raises(RuntimeError):
        ship(tiny_export, dest, **quiet)
    assert _contents(dest) == before
    assert [p.name for p in tmp_path.iterdir()] == ["shipcopy"], "no temporary folder left"
