"""Shipping a run: the copied export, its evaluation and the model card built from it."""

from __future__ import annotations

import json

import pytest

from bachgan.card import ShipInputError, reevaluate, ship
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
    assert "## Whole pieces" in card and "| noise + decoder |" in card
    assert evaluation["whole"]["split"] == "test"
    assert set(evaluation["whole"]["by_voice"]["soprano"]["rows"]) >= {
        "Bach",
        "model",
        "mismatched",
    }
    table = card.split("## Compared with other recipes")[1]
    header = next(line for line in table.splitlines() if line.startswith("| metric"))
    assert "shipped (tiny, 5 it.)" in header and "tiny (tiny, 5 it.)" in header
    chord = f"{evaluation['rows']['model/all']['chord_tone_rate']:.2f}"
    assert chord in next(line for line in table.splitlines() if line.startswith("| chord"))
    assert "tiny (tiny, 5 it.), raw" in table, "what each generator does without clean-up"
    assert (
        "`python -m bachgan train --run-dir runs/tiny --preset tiny --iterations 5 --seed 3 "
        "--precision float32`" in table
    )


def test_the_card_checks_that_the_run_never_trained_on_a_test_chorale(tiny_export, tmp_path):
    """The card says whether the evaluation's held-out chorales were in the run's training
    split, from the run's own config; a run whose split took a test chorale is named."""
    import shutil

    ship(tiny_export, tmp_path / "clean", max_windows=2, log=lambda *a: None)
    evaluation = json.loads((tmp_path / "clean" / "evaluation.json").read_text())
    assert len(evaluation["test_chorales"]) >= 20 and evaluation["test_chorales_trained_on"] == []
    assert (
        "None of these chorales is in the run's training split."
        in (tmp_path / "clean" / "MODEL_CARD.md").read_text()
    )

    # A run made before ids ignored the file format recorded 'bwv281.krn' in an earlier
    # session's split: it still counts as that chorale.
    leaky = tmp_path / "runs" / "leaky"
    shutil.copytree(tiny_export, leaky)
    config = json.loads((leaky / "config.json").read_text())
    held = evaluation["test_chorales"][0]
    config["train_earlier"] = [f"{held}.krn"]
    (leaky / "config.json").write_text(json.dumps(config))
    ship(leaky, tmp_path / "leaky", max_windows=2, log=lambda *a: None)
    card = (tmp_path / "leaky" / "MODEL_CARD.md").read_text()
    assert f"The run trained on 1 of them ({held})" in card

    config["data"] = "jsb.json"  # other ids: nothing to compare by name
    (leaky / "config.json").write_text(json.dumps(config))
    ship(leaky, tmp_path / "jsb", max_windows=2, log=lambda *a: None)
    card = (tmp_path / "jsb" / "MODEL_CARD.md").read_text()
    assert "Not checked against the run's training data" in card


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


def test_ship_takes_the_export_of_a_chosen_iteration(tiny_export, tmp_path):
    """--iteration ships that export (one chosen on valid), and the card's command says so;
    an iteration with no export is refused before anything is written."""
    import pytest

    from bachgan.card import ShipInputError

    dest = tmp_path / "chosen"
    with pytest.raises(ShipInputError, match="no export of iteration 3"):
        ship(tiny_export, dest, max_windows=2, log=lambda *a: None, iteration=3)
    assert not dest.exists()
    ship(tiny_export, dest, max_windows=2, log=lambda *a: None, iteration=5)
    assert Harmonizer(dest).card["iteration"] == 5
    assert "--iteration 5" in (dest / "MODEL_CARD.md").read_text()


def test_reevaluate_remakes_the_figures_in_place_and_keeps_the_training(tiny_export, tmp_path):
    """`ship --reevaluate`: a shipped model evaluated again with today's clean-up, for when
    its run is gone; weights and what the card says of training stay, the card says when."""
    dest = tmp_path / "shipped"
    ship(tiny_export, dest, max_windows=2, log=lambda *a: None)
    weights = (dest / "generator.weights.h5").read_bytes()
    before = json.loads((dest / "evaluation.json").read_text())
    reevaluate(dest, max_windows=2, log=lambda *a: None)
    after = json.loads((dest / "evaluation.json").read_text())
    assert (dest / "generator.weights.h5").read_bytes() == weights
    assert after["training"] == before["training"] and "reevaluated" in after
    assert "Evaluated again on" in (dest / "MODEL_CARD.md").read_text()
    with pytest.raises(ShipInputError):
        reevaluate(tmp_path / "nothing-here", log=lambda *a: None)
