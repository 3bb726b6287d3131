"""The voice-leading clean-up on hand-built generator scores with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from bachgan import cleanup, metrics, whole_ablation
from bachgan.voices import Voices

LOW, P = 28, 64


def scores(steps: int, wishes: dict[int, list[int]]) -> np.ndarray:
    """A roll scoring -1 everywhere except +1 at each voice's wished pitch per step."""
    roll = np.full((steps, P, 4), -1.0, np.float32)
    for v, pitches in wishes.items():
        for t, p in enumerate(pitches):
            roll[t, p - LOW, v] = 1.0
    return roll


def test_follows_the_generator_when_it_writes_good_chorale():
    melody = Voices.from_pitches(np.array([72] * 4 + [71] * 4 + [72] * 8))
    wish = {
        1: [67] * 4 + [67] * 4 + [64] * 8,
        2: [64] * 4 + [62] * 4 + [60] * 8,
        3: [48] * 4 + [55] * 4 + [48] * 8,
    }
    out = cleanup.voice_lead(scores(16, wish), melody, 0, LOW)
    for v, pitches in wish.items():
        assert out.pitches[:, v].tolist() == pitches
    assert out.pitches[:, 0].tolist() == melody.pitches[:, 0].tolist()


def test_a_melody_of_one_sounding_step_gets_one_chord():
    """No step to move between: the lattice has no transitions, and the chord is the
    generator's (a short upload or a one-note tune must not crash the clean-up)."""
    melody = Voices.from_pitches(np.array([-1, 72, -1, -1]))
    wish = {1: [67] * 4, 2: [64] * 4, 3: [48] * 4}
    out = cleanup.voice_lead(scores(4, wish), melody, 0, LOW)
    assert out.pitches[1].tolist() == [72, 67, 64, 48]
    assert (out.pitches[[0, 2, 3]] == -1).all()


def test_avoids_parallel_fifths_the_generator_prefers():
    # Soprano C5 -> D5. The generator's first choice moves alto F4 -> G4 and bass
    # F3 -> G3 (parallel fifths with the soprano); its second choices hold the alto
    # on F4 and take the bass down to G2 (a leap it pays for). The decoder must prefer
    # the second choices.
    melody = Voices.from_pitches(np.array([72] * 8 + [74] * 8))
    wish = {1: [65] * 8 + [67] * 8, 2: [60] * 8 + [59] * 8, 3: [53] * 8 + [55] * 8}
    roll = scores(16, wish)
    roll[8:, 65 - LOW, 1] = 0.9
    roll[8:, 43 - LOW, 3] = 0.9
    raw = Voices.from_pitches(np.where(roll.max(1) > 0, roll.argmax(1) + LOW, -1))
    assert metrics.window_metrics(raw)["parallel_per_100"] > 0
    out = cleanup.voice_lead(roll, melody, 0, LOW)
    assert metrics.window_metrics(out)["parallel_per_100"] == 0
    assert not (out.pitches[8, 1] == 67 and out.pitches[8, 3] == 55)  # not both first choices
    with whole_ablation.constants({"USE_STYLE": False}):  # hand-set costs: the second choices
        out = cleanup.voice_lead(roll, melody, 0, LOW)
    assert out.pitches[8, 1] == 65 and out.pitches[8, 3] == 43


def test_never_crosses_the_given_voice():
    melody = Voices.from_pitches(np.full(16, 60))  # soprano on C4
    wish = {1: [67] * 16, 2: [55] * 16, 3: [48] * 16}  # alto wants G4, above the soprano
    out = cleanup.voice_lead(scores(16, wish), melody, 0, LOW)
    assert (out.pitches[:, 1] <= 60).all()
    assert (out.pitches[:, 1] >= out.pitches[:, 2]).all()
    assert (out.pitches[:, 2] >= out.pitches[:, 3]).all()


def test_silence_before_and_after_the_melody_is_kept():
    melody = Voices.from_pitches(np.array([-1] * 4 + [72] * 8 + [-1] * 4))
    out = cleanup.voice_lead(scores(16, {}), melody, 0, LOW)
    assert (out.pitches[:4] == -1).all() and (out.pitches[-4:] == -1).all()
    assert (out.pitches[4:12] >= 0).all()


def test_inner_voices_sing_each_new_syllable_on_a_beat_and_the_bass_holds_two_beats():
    """The bass holds its C through the melody's E on beat 2, and sings it again under the
    G on beat 3: Bach's bass does not hold a note of two beats into a new syllable."""
    melody = Voices.from_pitches(np.array([72] * 4 + [76] * 4 + [79] * 8))  # C E G over C
    out = cleanup.voice_lead(scores(16, {1: [67] * 16, 2: [64] * 16, 3: [48] * 16}), melody, 0, LOW)
    assert out.pitches[:, 3].tolist() == [48] * 16
    assert out.onsets[[0, 4, 8], 1].all() and out.onsets[[0, 4, 8], 2].all()
    assert not out.onsets[12, 1]
    assert np.flatnonzero(out.onsets[:, 3]).tolist() == [0, cleanup.BASS_RESING_STEPS]


def test_the_bass_moves_on_16ths_only_at_a_price():
    """A bass the generator would move on the second 16th of a beat (a dotted rhythm Bach's
    basses do not have) waits for the beat when STYLE_SIXTEENTH_COST prices the 16th."""
    melody = Voices.from_pitches(np.array([72] * 8 + [74] * 8))
    roll = scores(16, {1: [67] * 16, 2: [64] * 16, 3: [48] * 3 + [43] * 13})
    with whole_ablation.constants({"STYLE_SIXTEENTH_COST": (0, 0, 0, 0)}):
        free = cleanup.voice_lead(roll, melody, 0, LOW)
    priced = cleanup.voice_lead(roll, melody, 0, LOW)
    assert 3 in np.flatnonzero(np.diff(free.pitches[:, 3]) != 0) + 1
    assert not any(t % 2 for t in np.flatnonzero(np.diff(priced.pitches[:, 3]) != 0) + 1)


def test_hand_set_costs_move_the_bass_where_the_melody_moves():
    """Without Bach's tables, BASS_HOLD_COST moves a held bass where the melody moves on a
    beat, when the generator nearly likes the move as much."""
    melody = Voices.from_pitches(np.array([72] * 4 + [76] * 4 + [79] * 8))
    roll = scores(16, {1: [67] * 16, 2: [64] * 16, 3: [48] * 16})
    roll[4:8, 43 - LOW, 3] = 0.95  # G2 nearly as good as C3 for the second beat
    with whole_ablation.constants({"USE_STYLE": False}):
        assert cleanup.voice_lead(roll, melody, 0, LOW).pitches[4, 3] == 43
        with whole_ablation.constants({"BASS_HOLD_COST": 0.0}):
            assert cleanup.voice_lead(roll, melody, 0, LOW).pitches[4, 3] == 48


def test_bachs_tables_keep_a_root_position_chord_on_the_beat():
    """The generator likes C3 and G2 under C-E-G alike: on a beat Bach puts the root in the
    bass far more often than the fifth (a 6/4 chord), so the bass takes C3; without the
    tables nothing tells them apart but the pitches' order."""
    melody = Voices.from_pitches(np.array([72] * 16))
    roll = scores(16, {1: [67] * 16, 2: [64] * 16, 3: [48] * 16})
    roll[:, 43 - LOW, 3] = 1.0  # G2 as good as C3
    assert (cleanup.voice_lead(roll, melody, 0, LOW).pitches[:, 3] == 48).all()
    roll[:, 48 - LOW, 3] = 0.9  # now the generator prefers G2 a little
    assert (cleanup.voice_lead(roll, melody, 0, LOW).pitches[:, 3] == 48).all()
    with whole_ablation.constants({"USE_STYLE": False}):
        assert (cleanup.voice_lead(roll, melody, 0, LOW).pitches[:, 3] == 43).all()


def test_per_voice_decoder_keeps_order():
    melody = Voices.from_pitches(np.full(16, 60))
    out = cleanup.per_voice(scores(16, {1: [67] * 16, 2: [55] * 16, 3: [48] * 16}), melody, 0, LOW)
    assert (out.pitches[:, 1] <= 60).all()


def test_transition_costs_equal_comparing_every_pair_of_voicings():
    """The broadcast tables give, for every pair of voicings, exactly what comparing the two
    voicings voice by voice gives (notes, leaps beyond a fifth, parallel 5ths/8ves)."""
    from itertools import product

    rng = np.random.default_rng(3)
    k, steps = 3, 6
    others = [0, 2, 3]  # the alto (1) is the given voice
    mel = rng.integers(55, 75, steps)
    mel[2] = -1  # a rest inside the melody
    cand = [mel[:, None]] * 4
    for g in others:  # narrow ranges, so that repeats, fifths and octaves happen often
        cand[g] = rng.choice([43, 48, 50, 55, 60, 62, 67, 72], (steps, k))
    count = lambda *w: cleanup._transition_cost(cand, others, k, weights=w)  # noqa: E731
    notes, leaps, parallels = count(1, 0, 0), count(0, 1, 0), count(0, 0, 1)
    weighted = count(cleanup.NOTE_COST, cleanup.LEAP_COST, cleanup.PARALLEL_COST)
    np.testing.assert_allclose(
        weighted,
        cleanup.NOTE_COST * notes + cleanup.LEAP_COST * leaps + cleanup.PARALLEL_COST * parallels,
    )
    states = list(product(range(k), repeat=3))

    def voicing(t, state):
        v = [int(mel[t])] * 4
        for g, c in zip(others, state):
            v[g] = int(cand[g][t, c])
        return v

    for t in range(steps - 1):
        for i, si in enumerate(states):
            for j, sj in enumerate(states):
                a, b = voicing(t, si), voicing(t + 1, sj)
                moves = [abs(b[g] - a[g]) for g in others]
                assert notes[t, j, i] == sum(m != 0 for m in moves)
                assert leaps[t, j, i] == sum(max(m - 7, 0) for m in moves)
                par = 0
                for p in range(4):
                    for q in range(p + 1, 4):
                        sound = min(a[p], a[q], b[p], b[q]) >= 0
                        iv_a, iv_b = (a[p] - a[q]) % 12, (b[p] - b[q]) % 12
                        same_way = (b[p] - a[p]) * (b[q] - a[q]) > 0
                        par += sound and same_way and iv_a == iv_b and iv_a in (0, 7)
                assert parallels[t, j, i] == par, (t, si, sj)
    assert parallels.max() > 0 and leaps.max() > 0, "the case exercises every term"


def test_bachs_move_costs_equal_pricing_every_pair_of_voicings():
    """With Bach's tables, the broadcast tables give each pair of voicings the sum over the
    generated voices of the hold cost, or the move cost plus the interval's."""
    from itertools import product

    rng = np.random.default_rng(5)
    k, steps = 3, 6
    others = [1, 2, 3]  # the soprano (0) is the given voice
    mel = rng.integers(64, 76, steps)
    cand = [mel[:, None]] + [rng.choice([43, 48, 50, 55, 60], (steps, k)) for _ in others]
    stay, go = rng.uniform(0, 1, (steps - 1, 4)), rng.uniform(0, 1, (steps - 1, 4))
    where = rng.uniform(0, 2, (4, 25))
    cost = cleanup._transition_cost(cand, others, k, (0, 0, 0), moves=(stay, go, where))
    states = list(product(range(k), repeat=3))
    for t in range(steps - 1):
        for i, si in enumerate(states):
            for j, sj in enumerate(states):
                want = 0.0
                for g, a, b in zip(others, si, sj):
                    before, after = int(cand[g][t, a]), int(cand[g][t + 1, b])
                    d = int(np.clip(after - before, -12, 12))
                    want += stay[t, g] if d == 0 else go[t, g] + where[g, d + 12]
                assert cost[t, j, i] == pytest.approx(want)
