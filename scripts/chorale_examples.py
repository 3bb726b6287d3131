"""Listening examples of whole held-out chorales: BachGAN's harmonization of each melody
beside Bach's own, as MIDI and MusicXML, to open in a score editor and hear.

    .venv/bin/python scripts/chorale_examples.py [--out-dir examples/chorales] [--checkpoint P]

The melodies are the soprano of test-split chorales (never trained on), two in major and two
in minor, harmonized as `evaluate --whole` does: the key read off the melody, the fermatas as
phrase ends, seed 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bachgan import midi
from bachgan.context import estimate
from bachgan.data import chorale_title, load_corpus
from bachgan.runs_io import atomic_write_bytes
from bachgan.sampling import Harmonizer


def pick(chorales, per_mode: int = 2) -> list:
    """The first `per_mode` major and minor chorales, in id order, that fit the model."""
    chosen = {"major": [], "minor": []}
    for ch in sorted(chorales, key=lambda c: c.name):
        mode = ch.key.split()[-1] if ch.key else ""
        if mode in chosen and len(chosen[mode]) < per_mode and ch.voices.bars <= 24:
            chosen[mode].append(ch)
    return chosen["major"] + chosen["minor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="examples/chorales")
    parser.add_argument("--checkpoint", help="a model folder (default: the shipped model)")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h = Harmonizer(args.checkpoint)
    for ch in pick(load_corpus().chorales("test")):
        melody = ch.voices.voice(0)
        context = estimate(melody, phrase_ends=ch.fermatas)
        ours = h.harmonize(melody, 0, seed=0, context=context).voices
        title = chorale_title(ch.name)
        for who, voices in (("bachgan", ours), ("bach", ch.voices)):
            stem = f"{ch.name}-{who}"
            atomic_write_bytes(out / f"{stem}.mid", midi.to_midi_bytes(voices))
            name = f"{title} ({'BachGAN' if who == 'bachgan' else 'Bach'})"
            atomic_write_bytes(out / f"{stem}.musicxml", midi.to_musicxml(voices, title=name))
        print(f"{ch.name}: {title}, {ch.key}")


if __name__ == "__main__":
    main()
