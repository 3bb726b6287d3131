"""Bach's style tables (bachgan.style): counts on hand-made pieces with known answers, the
file's round trip, and the shipped file being what the corpus gives."""

from __future__ import annotations

import numpy as np
import pytest

from bachgan import style
from bachgan.voices import Voices


def _piece() -> Voices:
    """Four bars: soprano holds C5 a bar at a time, alto E4 and tenor G3 hold, and the bass
    walks C3 D3 E3 F3 one note a beat (a step up each beat, a 4th down at each bar line)."""
    bars = 4
    bass = np.repeat([48, 50, 52, 53] * bars, 4)
    pitches = np.stack(
        [np.full(16 * bars, 72), np.full(16 * bars, 64), np.full(16 * bars, 55), bass], 1
    )
    onsets = np.zeros_like(pitches, bool)
    onsets[::16, 0] = True  # the soprano starts a note on each bar line
    onsets[0, 1:3] = True
    onsets[::4, 3] = True
    return Voices(pitches.astype(np.int16), onsets)


def test_fit_counts_where_and_how_far_each_voice_moves():
    s = style.Style.fit([_piece()], [(0, "major")])
    bass, alto = 3, 1
    given_soprano = s.change[0]
    # The bass moves on every beat (place 0) and never between: each of 3 bar-line moves
    # (soprano starting) and 12 others (soprano holding), against add-one smoothing.
    assert given_soprano[bass, 0, 0] == pytest.approx((12 + 1) / (12 + 2))
    assert given_soprano[bass, 0, 1] == pytest.approx((3 + 1) / (3 + 2))
    assert given_soprano[bass, 1, 0] == pytest.approx((0 + 1) / (16 + 2))  # 16 such 16ths
    assert given_soprano[alto, 0, 0] == pytest.approx(1 / 14)  # the alto holds throughout
    lim = style.INTERVAL_LIMIT
    moves = s.interval[bass]
    assert moves[lim] == 0  # a move goes somewhere
    assert moves.argmax() == lim + 2  # whole-tone steps up: C-D, D-E
    assert moves[lim - 5] > moves[lim - 4]  # F3 -> C3 (a 4th down) happened, a 3rd down never
    assert s.change.shape == (4, 4, 4, 2) and np.allclose(s.interval.sum(-1), 1)


def test_fit_counts_the_degree_each_voice_ends_on():
    """_piece ends C5 / E4 / G3 / F3 over C major: the tonic, the third, the fifth, the 4th
    degree; in D minor the same notes are the 7th, 2nd, 4th and 3rd."""
    s = style.Style.fit([_piece(), _piece()], [(0, "major"), (2, "minor")])
    major, minor = style.MODES.index("major"), style.MODES.index("minor")
    for voice, (in_c, in_d) in enumerate([(0, 10), (4, 2), (7, 5), (5, 3)]):
        assert s.ending[voice, major].argmax() == in_c
        assert s.ending[voice, major, in_c] == pytest.approx(2 / 13)  # one count + 12 smoothing
        assert s.ending[voice, minor].argmax() == in_d


def test_fit_counts_the_sonority_above_the_bass_by_place_in_the_beat():
    s = style.Style.fit([_piece()], [(0, "major")])
    c_e_g = 0b000010010001
    beat, sixteenth = 0, 2
    # Each bar's four beats sound C-E-G over C, C-E-G over E (6/3), and C-E-G with D or F
    # in the bass; the 6/4 (over G) never. 16 sonorities on beats, 0.1 smoothing per set.
    total = 16 + 0.1 * style.CHORD_SETS
    for bass in (0, 4):
        assert s.chord[beat, style.chord_set(c_e_g, bass)] == pytest.approx(4.1 / total)
    assert s.chord[beat, style.chord_set(c_e_g, 7)] == pytest.approx(0.1 / total)
    assert s.chord[sixteenth].sum() == pytest.approx(1)


def test_chord_sets_name_a_sonority_by_its_intervals_above_the_bass():
    c_e_g = 0b000010010001
    assert style.chord_set(c_e_g, 0) == ((1 << 4) | (1 << 7)) >> 1  # a 3rd and a 5th
    assert style.chord_set(c_e_g, 4) == ((1 << 3) | (1 << 8)) >> 1  # 6/3: a 3rd and a 6th
    g_b_d = c_e_g << 7 & 0xFFF | c_e_g >> 5  # the same triad on G
    assert style.chord_set(g_b_d, 7) == style.chord_set(c_e_g, 0)
    masks, basses = np.array([c_e_g, c_e_g]), np.array([0, 4])
    assert style.chord_set(masks, basses).tolist() == [
        style.chord_set(c_e_g, 0),
        style.chord_set(c_e_g, 4),
    ]


def test_the_tables_survive_their_file_and_refuse_a_foreign_one(tmp_path):
    s = style.Style.fit([_piece()], [(0, "major")])
    back = style.Style.from_dict(s.to_dict())
    for name in style.FIELDS:
        np.testing.assert_allclose(getattr(back, name), getattr(s, name), atol=1e-6)
    broken = s.to_dict() | {"strengths": ["beat", "off-beat"]}
    with pytest.raises(ValueError, match="places in the beat"):
        style.Style.from_dict(broken)


@pytest.mark.slow
def test_the_shipped_tables_are_the_training_chorales(corpus):
    """bachgan/style.json is what `python -m bachgan.style` makes from the corpus."""
    fitted, shipped = style.fit_corpus(corpus), style.load()
    for name in style.FIELDS:
        np.testing.assert_allclose(getattr(shipped, name), getattr(fitted, name), atol=1e-6)
