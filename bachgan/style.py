"""Bach's habits as the clean-up's priors, counted on the training chorales.

The clean-up (`bachgan.cleanup.voice_lead`) weighs the generator's candidate voicings.
Its hand-set terms (a cost per new note, per semitone of leap, per sonority that is no
chord) pushed the lower voices away from Bach's: too few 8ths, too few semitone steps in
the bass, 7th chords where Bach writes passing notes. `Style` replaces them with how often
Bach does each thing, so a voicing costs what it is unlikely to be in his chorales:

- `change`: how often a voice moves to another pitch at a step, by the step's place in
  its beat and by whether the given voice starts a note there;
- `interval`: where it goes when it moves (semitones, -12..+12, clipped), per voice;
- `chord`: the sonority, as the set of pitch classes above the bass (so C-E-G over C, over
  E and over G are three different sonorities, and a passing dissonance is its own), that
  sounds on a beat, on an off-beat 8th, and on a 16th;
- `register`: the MIDI pitches each voice sings, per sounding step;
- `ending`: the degree of the key (pitch class above the tonic) of each voice's last note,
  in major and in minor: a soprano ends on the tonic, an alto or tenor often on the third
  or fifth, which is how `bachgan.context.estimate_key` reads a key off any voice.

The tables are small; `bachgan/style.json` holds them, written by
``python -m bachgan.style`` from the training split, so harmonizing never needs the
corpus. Counts are add-one smoothed.
"""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bachgan import piece_stats as P
from bachgan.voices import STEPS_PER_BEAT, Voices

PATH = Path(__file__).with_name("style.json")
INTERVAL_LIMIT = 12
STRENGTHS = ("beat", "8th", "16th")
FIELDS = ("change", "interval", "chord", "register", "ending")
MODES = ("major", "minor")


def strength(steps: np.ndarray) -> np.ndarray:
    """Index into STRENGTHS of each step: on the beat, the off-beat 8th, or a 16th."""
    pos = np.asarray(steps) % STEPS_PER_BEAT
    return np.where(pos == 0, 0, np.where(pos == STEPS_PER_BEAT // 2, 1, 2))


CHORD_SETS = 1 << 11  # pitch-class sets above the bass: the bass's own class is always in


def chord_set(mask, bass_pc):
    """Index (0..2047) of a sonority's pitch classes above the bass: its 12-bit mask rotated
    so the bass is bit 0, which is then dropped. Works on numpy arrays too."""
    mask, bass_pc = np.asarray(mask, np.int64), np.asarray(bass_pc, np.int64)
    rotated = ((mask >> bass_pc) | (mask << (12 - bass_pc))) & 0xFFF
    return rotated >> 1


@dataclass(frozen=True)
class Style:
    """Probabilities (see module doc). Shapes: change (given voice 4, voice 4, place in the
    beat STEPS_PER_BEAT, given voice starts a note 2); interval (voice 4, 25); quality
    (STRENGTHS, CHORD_SETS); register (voice 4, MIDI pitch 128); ending (voice 4, MODES,
    degree 12)."""

    change: np.ndarray
    interval: np.ndarray
    chord: np.ndarray
    register: np.ndarray
    ending: np.ndarray

    @classmethod
    def fit(cls, pieces: list[Voices], keys: list[tuple[int, str]]) -> Style:
        """The tables from four-voice pieces and their keys (tonic pitch class, mode)."""
        change = np.ones((4, 4, STEPS_PER_BEAT, 2, 2))  # (..., moved?) add-one counts
        interval = np.ones((4, 2 * INTERVAL_LIMIT + 1))
        interval[:, INTERVAL_LIMIT] = 0  # a move goes somewhere
        chord = np.full((len(STRENGTHS), CHORD_SETS), 0.1)  # most sets never sound
        register = np.ones((4, 128))
        ending = np.ones((4, len(MODES), 12))
        for voices, (tonic, mode) in zip(pieces, keys):
            p = voices.pitches.astype(np.int64)
            for v in range(4):
                sung = p[p[:, v] >= 0, v]
                if sung.size:
                    ending[v, MODES.index(mode), (sung[-1] - tonic) % 12] += 1
            for v in range(4):
                np.add.at(register[v], p[p[:, v] >= 0, v], 1)
            t = np.arange(1, voices.steps)
            place = t % STEPS_PER_BEAT
            both = (p[1:] >= 0) & (p[:-1] >= 0)
            moved = both & (p[1:] != p[:-1])
            for v in range(4):
                d = np.clip(p[1:, v] - p[:-1, v], -INTERVAL_LIMIT, INTERVAL_LIMIT)
                np.add.at(interval[v], d[moved[:, v]] + INTERVAL_LIMIT, 1)
                for g in range(4):
                    if g == v:
                        continue
                    starts = voices.onsets[1:, g].astype(int)
                    sel = both[:, v]
                    np.add.at(change[g, v], (place[sel], starts[sel], moved[sel, v].astype(int)), 1)
            mask, lowest, count = P.sonorities(voices)
            on = np.flatnonzero(count > 0)
            np.add.at(chord, (strength(on), chord_set(mask[on], lowest[on] % 12)), 1)
        return cls(
            change=change[..., 1] / change.sum(-1),
            interval=interval / interval.sum(-1, keepdims=True),
            chord=chord / chord.sum(-1, keepdims=True),
            register=register / register.sum(-1, keepdims=True),
            ending=ending / ending.sum(-1, keepdims=True),
        )

    def to_dict(self) -> dict:
        return {
            "change": np.round(self.change, 6).tolist(),
            "interval": np.round(self.interval, 6).tolist(),
            "chord": np.round(self.chord, 7).tolist(),
            "register": np.round(self.register, 7).tolist(),
            "ending": np.round(self.ending, 6).tolist(),
            "strengths": list(STRENGTHS),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Style:
        if d.get("strengths") != list(STRENGTHS) or len(d["chord"][0]) != CHORD_SETS:
            raise ValueError("style tables were written for other places in the beat or chords")
        return cls(*(np.asarray(d[k], np.float64) for k in FIELDS))


@functools.lru_cache(maxsize=1)
def load(path: str | Path = PATH) -> Style:
    """The shipped tables (bachgan/style.json)."""
    return Style.from_dict(json.loads(Path(path).read_text()))


def fit_corpus(corpus=None) -> Style:
    """The tables from the training split's chorales (every meter: places in the beat and
    sonorities do not depend on it)."""
    from bachgan.context import parse_key
    from bachgan.data import BAR_STEPS, load_corpus

    corpus = corpus or load_corpus()
    chorales = corpus.chorales("train", meters=tuple(BAR_STEPS))
    return Style.fit([ch.voices for ch in chorales], [parse_key(ch.key) for ch in chorales])


def main() -> None:
    parser = argparse.ArgumentParser(description="write bachgan/style.json from the corpus")
    parser.add_argument("--out", default=str(PATH))
    args = parser.parse_args()
    text = json.dumps(fit_corpus().to_dict(), separators=(",", ":")) + "\n"
    Path(args.out).write_text(text)
    print(f"wrote {args.out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
