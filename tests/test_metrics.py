"""Metrics on hand-built four-voice examples with known answers, plus JSB figures.

The JSB file is optional: those tests skip when it is absent (e.g. on CI).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from bachgan import data
from bachgan import metrics as M
from bachgan.voices import SATB_RANGES, VOICE_NAMES, Voices

R = -1  # rest


def seq(*notes: tuple[int, int]) -> list[int]:
    """(pitch, steps) pairs -> one voice's pitch per step."""
    return [p for p, n in notes for _ in range(n)]


def satb(s=None, a=None, t=None, b=None, steps=None) -> Voices:
    """Voices from per-voice pitch lists (None = silent throughout)."""
    cols = [s, a, t, b]
    steps = steps or max(len(c) for c in cols if c is not None)
    return Voices.from_pitches(np.array([c or [R] * steps for c in cols], np.int16).T)


# ------------------------------------------------------------------ parallels


def test_one_parallel_fifth_counts_once():
    # G4-A4-B4 over C4-D4-G3: a parallel fifth (G/C -> A/D), then contrary motion.
    v = satb(s=seq((67, 4), (69, 4), (71, 4)), b=seq((60, 4), (62, 4), (55, 4)))
    m = M.window_metrics(v)
    assert m["n_motions"] == 2
    assert m["parallel_per_100"] == pytest.approx(100 / 2)
    assert m["parallel_fifths_per_100"] == pytest.approx(50)
    assert m["parallel_octaves_per_100"] == 0
    assert m["parallel_per_100/soprano-bass"] == pytest.approx(50)
    assert math.isnan(m["parallel_per_100/alto-tenor"])  # no motions at all


def test_parallel_octave_and_compound_octave():
    v = satb(s=seq((72, 4), (74, 4)), t=seq((60, 4), (62, 4)), b=seq((48, 4), (50, 4)))
    m = M.window_metrics(v)
    # soprano-tenor (octave), soprano-bass (two octaves), tenor-bass (octave)
    assert m["n_motions"] == 3
    assert m["parallel_octaves_per_100"] == pytest.approx(100)
    assert m["parallel_fifths_per_100"] == 0
    assert m["parallel_per_100/soprano-tenor"] == pytest.approx(100)


def test_contrary_fifth_is_not_parallel():
    # G4/C4 (fifth) -> D5/G3 (twelfth): fifths in contrary motion.
    v = satb(s=seq((67, 4), (74, 4)), b=seq((60, 4), (55, 4)))
    m = M.window_metrics(v)
    assert m["n_motions"] == 1
    assert m["parallel_per_100"] == 0


def test_hidden_fifth_is_not_parallel():
    # E4/C3 (major 10th) -> G4/C4 (fifth) in similar motion: a hidden fifth.
    v = satb(s=seq((64, 4), (67, 4)), b=seq((48, 4), (60, 4)))
    m = M.window_metrics(v)
    assert m["n_motions"] == 1
    assert m["parallel_per_100"] == 0


def test_repeated_note_and_rest_are_not_motions():
    p = np.array([[67, R, R, 60], [67, R, R, 60], [R, R, R, 62], [69, R, R, 62]], np.int16)
    onsets = np.array([[1, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]], bool)
    m = M.window_metrics(Voices(p, onsets))
    # step 0->1 soprano re-strikes G: no pitch moves; 1->2 and 2->3 soprano rests.
    assert m["n_motions"] == 0
    assert math.isnan(m["parallel_per_100"])


# ------------------------------------------------------------------ chords


@pytest.mark.parametrize(
    ("chord", "fits"),
    [
        ((72, 67, 64, 48), True),  # C major triad, root doubled
        ((71, 65, 62, 55), True),  # G7
        ((70, 66, 63, 60), True),  # C half-diminished 7th
        ((68, 64, 60, 48), True),  # augmented triad
        ((67, 60, 55, 48), True),  # only C and G: a doubling fits
        ((62, 61, 60, 48), False),  # cluster C-C#-D
        ((67, 64, 62, 48), False),  # C-D-E-G (added 9th) is no triad/7th
    ],
)
def test_chord_tones(chord, fits):
    v = satb(*[[p] * 4 for p in chord])
    m = M.window_metrics(v)
    assert m["n_chord_steps"] == 4
    assert m["chord_tone_rate"] == (1.0 if fits else 0.0)


def test_chord_tone_rate_needs_three_voices_and_counts_steps():
    # 4 steps cluster, 12 steps C major, then 16 steps with only two voices sounding.
    v = satb(
        s=seq((62, 4), (72, 12), (72, 16)),
        a=seq((61, 4), (67, 12), (67, 16)),
        t=seq((60, 4), (64, 12), (R, 16)),
        b=seq((48, 16), (R, 16)),
    )
    m = M.window_metrics(v)
    assert m["n_chord_steps"] == 16
    assert m["chord_tone_rate"] == pytest.approx(12 / 16)


def test_chord_table():
    def mask(*pcs):
        return sum(1 << p for p in pcs)

    assert M.CHORD_FITS[mask(0, 4, 7)] and M.CHORD_FITS[mask(7, 11, 2, 5)]
    assert M.CHORD_FITS[mask(0, 3, 6, 9)] and M.CHORD_FITS[mask(0, 4, 7, 11)]
    assert not M.CHORD_FITS[mask(0, 1, 2)] and not M.CHORD_FITS[mask(0, 4, 7, 9, 10)]
    # Any one or two pitch classes fit some chord (dominant 7th / major 7th cover 2 and 1).
    assert all(M.CHORD_FITS[mask(0, k)] for k in range(12))


# ------------------------------------------------------------------ crossing


def test_alto_above_soprano_counts_as_crossing():
    v = satb(
        s=seq((60, 8), (72, 8)),
        a=seq((64, 8), (67, 8)),
        t=seq((55, 16)),
        b=seq((48, 16)),
    )
    assert M.window_metrics(v)["voice_crossing"] == pytest.approx(0.5)


def test_unison_is_not_crossing_and_lonely_steps_do_not_count():
    # Steps 0-3: alto in unison with soprano; steps 4-7: only the bass sounds.
    v = satb(s=seq((67, 4), (R, 4)), a=seq((67, 4), (R, 4)), b=seq((48, 8)))
    assert M.window_metrics(v)["voice_crossing"] == 0.0
    # Tenor above alto (non-adjacent soprano/bass irrelevant).
    v = satb(s=[72] * 4, a=[60] * 4, t=[62] * 4, b=[48] * 4)
    assert M.window_metrics(v)["voice_crossing"] == 1.0


# ------------------------------------------------------------------ key


def test_c_major_scale_is_in_key():
    v = satb(s=seq(*[(p, 4) for p in (60, 62, 64, 65, 67, 69, 71, 72)]))
    assert M.estimate_key(v) == (0, "major")
    m = M.window_metrics(v)
    assert m["in_key_rate"] == 1.0 and m["in_key/soprano"] == 1.0


def test_minor_with_raised_leading_tone_is_in_key():
    # A minor: A B C D E F G# A over A and E in the bass.
    v = satb(
        s=seq(*[(p, 4) for p in (69, 71, 72, 74, 76, 77, 80, 81)]),
        b=seq((45, 16), (40, 12), (45, 4)),
    )
    assert M.estimate_key(v) == (9, "minor")
    assert M.window_metrics(v)["in_key_rate"] == 1.0
    assert M.key_name(*M.estimate_key(v)) == "A minor"


def test_out_of_key_note_by_note():
    # C major arpeggio, 8 notes of which one is C# (held briefly so the key stays C).
    s = seq((72, 4), (67, 4), (64, 4), (60, 4), (64, 4), (67, 4), (73, 1), (72, 7))
    v = satb(s=s, b=seq((48, 32)))
    assert M.estimate_key(v) == (0, "major")
    m = M.window_metrics(v)
    assert m["in_key_rate"] == pytest.approx(8 / 9)  # 8 soprano notes + 1 bass note
    assert m["in_key/soprano"] == pytest.approx(7 / 8)


def test_key_matches_batch_estimate_and_is_transposition_invariant():
    v = satb(
        s=seq((72, 8), (71, 8), (72, 16)),
        a=seq((67, 8), (67, 8), (67, 16)),
        t=seq((64, 8), (62, 8), (64, 16)),
        b=seq((48, 8), (55, 8), (48, 16)),
    )
    base = M.window_metrics(v)
    for k in range(-5, 7):
        w = v.transpose(k)
        assert M.estimate_key(w) == ((M.estimate_key(v)[0] + k) % 12, M.estimate_key(v)[1])
        m = M.window_metrics(w)
        for key in ("in_key_rate", "chord_tone_rate", "parallel_per_100", "voice_crossing"):
            assert m[key] == pytest.approx(base[key], nan_ok=True)


# ------------------------------------------------------------------ per voice


def test_onsets_per_bar_counts_repeated_notes():
    p = np.full((32, 4), 60, np.int16)
    p[:, 0], p[:, 3] = 72, 48
    onsets = np.zeros((32, 4), bool)
    onsets[::4, 1] = True  # alto re-strikes its C every beat: 8 notes in 2 bars
    m = M.window_metrics(Voices(p, onsets))
    assert m["onsets_per_bar/alto"] == 4.0
    assert m["onsets_per_bar/tenor"] == 0.5  # one held note over 2 bars
    assert m["onsets_per_bar_lower"] == pytest.approx((4 + 0.5 + 0.5) / 3)
    # Without onsets the repeated notes merge.
    assert M.window_metrics(Voices.from_pitches(p))["onsets_per_bar/alto"] == 0.5


def test_silence_empty_bars_and_pitch_classes():
    v = satb(
        s=seq((72, 8), (74, 8), (76, 8), (72, 8)),
        a=seq((64, 32)),
        t=seq((R, 8), (55, 24)),
        b=seq((48, 16), (R, 16)),
    )
    m = M.window_metrics(v)
    assert m["silence/tenor"] == 0.25 and m["empty_bars/tenor"] == 0.0
    assert m["silence/bass"] == 0.5 and m["empty_bars/bass"] == 0.5
    assert m["silence/alto"] == 0.0 and m["silence/soprano"] == 0.0
    assert m["silence_lower"] == pytest.approx(0.75 / 3)
    assert m["empty_bars_lower"] == pytest.approx(0.5 / 3)
    assert m["pitch_classes_per_bar/soprano"] == 2.0  # C D | E C
    assert m["pitch_classes_per_bar/bass"] == 0.5  # C | (empty)
    assert m["pitch_classes_per_bar/alto"] == 1.0


def test_lower_voices_can_be_chosen():
    v = satb(s=seq((R, 16), (72, 16)), a=seq((64, 32)), t=seq((55, 32)), b=seq((48, 32)))
    assert M.window_metrics(v)["silence_lower"] == 0.0
    assert M.window_metrics(v, voices=("soprano",))["silence_lower"] == 0.5
    assert M.window_metrics(v, voices=(0, 1))["empty_bars_lower"] == 0.25


def test_satb_range_share():
    lo, hi = SATB_RANGES["soprano"]
    v = satb(s=seq((lo, 4), (lo - 1, 4), (hi, 4), (hi + 1, 4)), a=seq((60, 16)))
    m = M.window_metrics(v)
    assert m["in_range/soprano"] == 0.5
    assert m["in_range/alto"] == 1.0
    assert math.isnan(m["in_range/tenor"])  # no notes
    assert m["in_range_lower"] == 1.0


# ------------------------------------------------------------------ pianorolls


def test_multi_pitch_rate_on_crafted_roll():
    roll = np.full((4, 128, 4), -1.0, np.float32)
    for t in range(4):
        roll[t, [72, 64, 55, 48], [0, 1, 2, 3]] = 1.0
    roll[1, 57, 2] = 1.0  # tenor sounds two pitches at step 1
    roll[3, 74, 0] = 0.3  # soprano too at step 3 (a positive score)
    roll[3, 66, 1] = 0.9  # and the alto at the same step: still one step
    assert M.multi_pitch_rate(roll) == 0.5
    assert M.multi_pitch_counts(roll) == (2, 4)
    assert M.multi_pitch_rate(roll, threshold=0.5) == 0.5  # step 3 alto still doubled
    assert M.multi_pitch_rate(roll, threshold=0.95) == 0.25
    np.testing.assert_allclose(M.multi_pitch_rate(roll, per_voice=True), [0.25, 0.25, 0.25, 0])
    batch = np.stack([roll, np.where(roll > 0.95, 1.0, -1.0)])
    assert M.multi_pitch_rate(batch) == pytest.approx(3 / 8)
    assert M.multi_pitch_counts([roll, roll[:2]]) == (3, 6)


def test_batch_metrics_takes_rolls_for_multi_pitch():
    from bachgan.pianoroll import to_roll

    v = satb(s=[72] * 4, a=[64] * 4, t=[55] * 4, b=[48] * 4)
    roll = to_roll(v)
    assert M.batch_metrics([v])["multi_pitch_rate"] == 0.0
    assert M.batch_metrics([v], rolls=roll[None])["multi_pitch_rate"] == 0.0
    roll[0, 60, 1] = 1.0
    assert M.batch_metrics([v], rolls=roll[None])["multi_pitch_rate"] == 0.25


# ------------------------------------------------------------------ pooling, API


def test_batch_pools_counts_not_ratios():
    one = satb(s=seq((67, 4), (69, 4)), b=seq((60, 4), (62, 4)))  # 1 motion, parallel
    three = satb(s=seq((67, 2), (69, 2), (71, 2), (72, 2)), b=seq((48, 8)))  # 3, none
    m = M.batch_metrics([one, three])
    assert m["n_motions"] == 4
    assert m["parallel_per_100"] == pytest.approx(25)  # not the mean of 100 and 0
    assert m["n_windows"] == 2


def test_batch_of_mixed_lengths_and_arrays_agree():
    rng = np.random.default_rng(1)
    ws = M.random_baseline(6, rng, steps=32) + M.random_baseline(3, rng, steps=20)
    m = M.batch_metrics(ws)
    assert m["n_steps"] == 6 * 32 + 3 * 20
    a = M.batch_metrics(ws[:6])
    b = M.metrics_from_arrays(
        np.stack([w.pitches for w in ws[:6]]), np.stack([w.onsets for w in ws[:6]])
    )
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], nan_ok=True), k
    single = M.window_metrics(ws[0])
    assert single == pytest.approx(M.batch_metrics([ws[0]]), nan_ok=True)


def test_input_checks():
    with pytest.raises(ValueError):
        M.batch_metrics([])
    with pytest.raises(ValueError):
        M.window_metrics(Voices.from_pitches(np.full((8, 3), 60)))
    with pytest.raises(ValueError):
        M.window_metrics(satb(s=[72] * 4), voices=("baritone",))


def test_headline_keys_and_targets():
    m = M.window_metrics(satb(s=[72] * 16, a=[64] * 16, t=[55] * 16, b=[48] * 16))
    keys = [k for k, _ in M.HEADLINE]
    assert set(keys) == set(M.TARGETS) and all(k in m for k in keys)
    texts = [M.target_text(k) for k in keys]
    assert texts == [">= 0.80", "<= 0.5", "<= 0.05", ">= 0.93", "3 to 6", "<= 0.05", "<= 0.02"]
    ok = M.meets_targets(m)
    assert ok["chord_tone_rate"] and ok["voice_crossing"] and not ok["onsets_per_bar_lower"]
    table = M.headline_table({"x": m})
    assert table.count("\n") == len(M.HEADLINE) + 1


def test_every_voice_has_its_keys():
    m = M.window_metrics(satb(s=[72] * 16, a=[64] * 16, t=[55] * 16, b=[48] * 16))
    for name in ("onsets_per_bar", "silence", "empty_bars", "pitch_classes_per_bar", "in_range"):
        for voice in VOICE_NAMES:
            assert f"{name}/{voice}" in m
    assert len([k for k in m if k.startswith("parallel_per_100/")]) == 6


# ------------------------------------------------------------------ baselines


def test_random_baseline():
    rng = np.random.default_rng(0)
    ws = M.random_baseline(200, rng)
    assert len(ws) == 200 and all(w.pitches.shape == (32, 4) for w in ws)
    p = np.stack([w.pitches for w in ws])
    for k, name in enumerate(VOICE_NAMES):
        lo, hi = SATB_RANGES[name]
        assert p[..., k].min() >= lo and p[..., k].max() <= hi
    m = M.batch_metrics(ws)
    assert 15.0 < m["onsets_per_bar_lower"] < 15.6
    assert m["silence_lower"] == 0 and m["in_range_lower"] == 1.0
    held = M.batch_metrics(M.random_baseline(200, rng, hold=0.75))
    assert 3 < held["onsets_per_bar_lower"] < 6


def test_shuffled_lower_voices_baseline():
    rng = np.random.default_rng(0)
    ws = [satb(s=[60 + i] * 8, a=[50 + i] * 8, t=[40 + i] * 8, b=[30 + i] * 8) for i in range(10)]
    out = M.shuffled_lower_voices_baseline(ws, rng)
    partners = []
    for i, w in enumerate(out):
        assert w.pitches[0, 0] == 60 + i  # own soprano
        j = w.pitches[0, 1] - 50
        assert j != i and w.pitches[0, 2] == 40 + j and w.pitches[0, 3] == 30 + j
        partners.append(j)
    assert sorted(partners) == list(range(10))
    groups = [i // 2 for i in range(10)]  # windows 2k and 2k+1 from the same chorale
    out = M.shuffled_lower_voices_baseline(ws, np.random.default_rng(3), groups)
    assert all(groups[w.pitches[0, 1] - 50] != groups[i] for i, w in enumerate(out))


# ------------------------------------------------------------------ JSB figures

JSB = Path(
    os.environ.get(
        "BACHGAN_JSB", Path(__file__).resolve().parents[2] / "shared/data/Jsb16thSeparated.json"
    )
)


@pytest.fixture(scope="module")
def jsb_test_windows():
    if not JSB.is_file():
        pytest.skip(f"JSB data not found at {JSB}")
    windows, owner = [], []  # each window and the chorale it comes from
    for i, chorale in enumerate(data.load_jsb(JSB).splits["test"]):
        ws = data.windows(chorale.voices)
        windows += ws
        owner += [i] * len(ws)
    return windows, owner


def test_jsb_bach_figures_near_the_issue(jsb_test_windows):
    windows, _ = jsb_test_windows
    assert len(windows) > 500
    m = M.reference(windows)
    assert m["chord_tone_rate"] >= 0.80
    assert m["parallel_per_100"] < 0.5
    assert m["voice_crossing"] < 0.05
    assert m["in_key_rate"] >= 0.90
    assert 3 <= m["onsets_per_bar_lower"] <= 6
    assert m["silence_lower"] <= 0.05
    assert m["multi_pitch_rate"] == 0
    assert all(M.meets_targets(m).values())


def test_jsb_baselines_are_clearly_worse(jsb_test_windows):
    windows, owner = jsb_test_windows
    rng = np.random.default_rng(0)
    bach = M.reference(windows)
    shuffled = M.batch_metrics(M.shuffled_lower_voices_baseline(windows, rng, owner))
    rand = M.batch_metrics(M.random_baseline(len(windows), rng))
    assert rand["chord_tone_rate"] < 0.5
    assert bach["chord_tone_rate"] > 0.8
    assert shuffled["chord_tone_rate"] < bach["chord_tone_rate"] - 0.2
    assert rand["parallel_per_100"] > 3 * bach["parallel_per_100"]
    assert shuffled["parallel_per_100"] > 3 * bach["parallel_per_100"]
    assert rand["voice_crossing"] > 0.3 and shuffled["voice_crossing"] > 0.08
    assert rand["in_key_rate"] < 0.85 and shuffled["in_key_rate"] < bach["in_key_rate"]
    assert rand["onsets_per_bar_lower"] > 14
    assert shuffled["onsets_per_bar_lower"] == pytest.approx(bach["onsets_per_bar_lower"], rel=0.05)
