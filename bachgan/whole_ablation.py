"""What each of the clean-up's whole-piece terms contributes: the model with the default
clean-up, then with one term off at a time, by the whole-piece figures of `evaluate --whole`
(soprano given). Run on the valid split, where the weights were chosen."""

from __future__ import annotations

import contextlib

from bachgan import cleanup
from bachgan import whole_eval as W
from bachgan.whole_tables import SUMMARY_LABELS

# Each variant: the clean-up's module constants it changes.
VARIANTS = {
    "default": {},
    "no cadence terms": {
        "CADENCE_COST": 0.0,
        "CADENCE_BONUS": 0.0,
        "END_COST": 0.0,
        "LEADING_TONE_COST": 0.0,
        "OFFER_CADENCE_BASS": False,
    },
    "no cadence pitches offered to the bass": {"OFFER_CADENCE_BASS": False},
    "no authentic-cadence bonus": {"CADENCE_BONUS": 0.0},
    "hand-set costs in place of Bach's tables": {"USE_STYLE": False},
    "no moves table (hold or move)": {"STYLE_CHANGE_WEIGHT": 0.0},
    "no intervals table": {"STYLE_INTERVAL_WEIGHT": 0.0},
    "no sonorities table": {"STYLE_CHORD_WEIGHT": 0.0},
    "no register table": {"STYLE_REGISTER_WEIGHT": 0.0},
    "bass free to move on 16ths": {"STYLE_SIXTEENTH_COST": (0.0, 0.0, 0.0, 0.0)},
    "held bass never sung again": {"BASS_RESING_STEPS": 10**6},
    "4 candidates per voice (not 6)": {"CANDIDATES": 4},
}


@contextlib.contextmanager
def constants(changes: dict):
    """The clean-up with some of its weights changed, restored on exit."""
    before = {k: getattr(cleanup, k) for k in changes}
    for k, v in changes.items():
        setattr(cleanup, k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            setattr(cleanup, k, v)


def ablation(harmonizer, corpus, split: str = "valid", seed: int = 0) -> dict:
    """{variant: whole-piece row} for the split's chorales, soprano given."""
    chorales = corpus.chorales(split)
    reference = W.by_mode(W.reference_stats(corpus))
    bach = {ch.name: W.chorale_stats(ch) for ch in chorales}

    def make(ch, v):
        return W.harmonize_chorale(harmonizer, ch, v, W.piece_seed(seed, ch.name))

    rows = {}
    for name, changes in VARIANTS.items():
        with constants(changes):
            stats, skipped = W.run_row(make, chorales, 0)
        rows[name] = W.row_result(stats, skipped, bach, reference, 0, seed)
    return rows


def table(rows: dict) -> str:
    head = ["clean-up", "mode kept", "key kept", *SUMMARY_LABELS.values()]
    head += ["bass repeats", "parallels /100", "authentic+half", "closed", "ends on tonic"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name, f"{r['mode_kept']:.0%}", f"{r['key_kept']:.0%}"]
        cells += [f"{r['summary'][k]:.3f}" for k in SUMMARY_LABELS]
        cells += [f"{r['bass_repeats']:.0%}", f"{r['parallels_per_100']:.2f}"]
        cells += [f"{r[k]:.0%}" for k in ("authentic_or_half", "closed", "ends_on_tonic")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
