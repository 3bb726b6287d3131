"""The whole-piece evaluation: distances, the classifier test, rows, on cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bachgan import piece_stats as P
from bachgan import whole_compare as C
from bachgan import whole_eval as W
from bachgan.data import Chorale, Corpus
from bachgan.melody import MelodyError
from bachgan.voices import Voices

BEAT = 4
C_MAJOR = {
    "I": (72, 67, 64, 48),  # C5 G4 E4 C3
    "IV": (72, 69, 65, 53),  # C5 A4 F4 F3
    "V": (71, 67, 62, 55),  # B4 G4 D4 G3
    "V7": (71, 65, 62, 55),  # B4 F4 D4 G3
    "vi": (72, 69, 64, 57),  # C5 A4 E4 A3
}
G_MINOR = {
    "i": (67, 62, 58, 43),  # G4 D4 Bb3 G2
    "iv": (67, 63, 60, 48),  # G4 Eb4 C4 C3
    "V": (66, 62, 57, 50),  # F#4 D4 A3 D3
}


def progression(table: dict, names: str) -> Voices:
    """Chords by name, a beat each, every chord restarting all four voices."""
    rows = [table[n] for n in names.split() for _ in range(BEAT)]
    onsets = np.zeros((len(rows), 4), bool)
    onsets[::BEAT] = True
    return Voices(np.array(rows, np.int16), onsets)


def last_beat(v: Voices) -> np.ndarray:
    f = np.zeros(v.steps, bool)
    f[-BEAT:] = True
    return f


# ---------------------------------------------------------------- distances


def test_emd_is_zero_for_identical_histograms_and_grows_with_a_shift():
    positions = np.arange(25.0)
    h = np.zeros(25)
    h[[10, 11, 12]] = [1, 2, 1]
    assert C.emd(h, h, positions) == 0
    assert C.emd(h, 3 * h, positions) == 0  # counts are normalised first
    shifted = [C.emd(h, np.roll(h, k), positions) for k in (1, 2, 5)]
    assert shifted == pytest.approx([1, 2, 5])


def test_emd_uses_the_bin_positions():
    a, b = np.array([1, 0, 0]), np.array([0, 0, 1])
    assert C.emd(a, b, np.array([0.0, 1.0, 3.0])) == pytest.approx(3)
    assert C.emd(a, b, np.log2([1.0, 2.0, 8.0])) == pytest.approx(3)  # three doublings


def test_circular_emd_wraps_around():
    a = np.zeros(12)
    a[0] = 1  # all on the tonic
    b = np.roll(a, 11)  # all on the leading tone: one semitone away around the circle
    assert C.emd(a, b, np.arange(12.0), period=12.0) == pytest.approx(1)
    assert C.emd(a, b, np.arange(12.0)) == pytest.approx(11)  # linear: eleven
    assert C.emd(a, np.roll(a, 6), np.arange(12.0), period=12.0) == pytest.approx(6)


def test_total_variation():
    assert C.total_variation([1, 2, 3], [2, 4, 6]) == 0
    assert C.total_variation([1, 0], [0, 1]) == 1
    assert C.total_variation([3, 1], [1, 1]) == pytest.approx(0.25)
    assert np.isnan(C.total_variation([0, 0], [1, 1]))


def _piece(names: str, table=C_MAJOR, tonic=0, mode="major", shift=0) -> dict:
    v = progression(table, names).transpose(shift)
    return P.piece_stats(v, tonic, mode, last_beat(v))


def test_distances_are_zero_between_identical_pieces_and_grow_with_a_change():
    a = _piece("I IV V7 I vi IV V I")
    reference = W.by_mode([a])
    same = C.distances([a], reference)
    assert len(same) == 4 * 5 + 3 + 2 and all(d == 0 for d in same.values())
    # The whole piece a tone up but read in C: every note 2 semitones higher (the scale
    # degrees' distance is less, as the moved degrees partly land on ones that were there).
    moved = C.distances([_piece("I IV V7 I vi IV V I", shift=2)], reference)
    assert moved["register/bass"] == pytest.approx(2)
    assert 0.5 < moved["scale_degrees/bass"] <= 2
    assert moved["intervals/bass"] == 0  # the same intervals
    assert moved["cadences"] == 1  # authentic before, 'other' now (D major is no I in C)


def test_distances_keep_the_modes_apart():
    major = _piece("I IV V7 I")
    minor = _piece("i iv V i", G_MINOR, 7, "minor")
    reference = W.by_mode([major, minor])
    d = C.distances([major, minor], reference)
    assert d["scale_degrees/soprano"] == 0 and d["qualities"] == 0
    # Against the other mode's reference, the same pieces are far.
    swapped = {"major": reference["minor"], "minor": reference["major"]}
    assert C.distances([major, minor], swapped)["qualities"] == pytest.approx(0.75)


def test_summary_averages_the_written_voices_only():
    dist = {f"{f}/{v}": 0.0 for f in C.VOICE_FEATURES for v in ("alto", "tenor", "bass")}
    dist |= {f"{f}/soprano": 9.0 for f in C.VOICE_FEATURES}
    dist |= {f"spacing/{p}": 1.0 for p in P.PAIR_NAMES} | {"qualities": 0.5, "cadences": 0.25}
    s = C.summary(dist, given=0)
    assert s["intervals"] == 0 and s["spacing"] == 1 and s["cadences"] == 0.25
    assert C.summary(dist, given=1)["intervals"] == pytest.approx(3)  # soprano now written


def test_figures_pool_pieces():
    v = progression(C_MAJOR, "I IV IV V7 I")  # the bass strikes F twice: 1 repeat in 4 moves
    a = P.piece_stats(v, 0, "major", last_beat(v), key=False)
    b = _piece("I IV I V vi")  # ends V-vi: deceptive, not on the tonic
    f = C.figures([a, b])
    assert f["bass_repeats"] == pytest.approx(1 / 8)  # 1 repeat in 4 + 4 moves
    assert f["repeat_share/bass"] == f["bass_repeats"]
    assert f["repeat_share/soprano"] == 0.5  # C5 C5 C5 B4 C5 in both: 2 repeats in 4 moves
    assert f["ends_on_tonic"] == 0.5 and f["phrase_ends"] == 2
    assert f["authentic_or_half"] == 0.5 and f["cadence/deceptive"] == 0.5
    # V -> vi as voiced here moves everything up a step: alto and bass in octaves (G/G ->
    # A/A), tenor and bass in fifths (D/G -> E/A).
    assert C.figures([a])["parallels_per_100"] == 0
    fifths, octaves, motions = b["parallels"] + a["parallels"]
    assert (fifths, octaves) == (1, 1)
    assert f["parallels_per_100"] == pytest.approx(200 / motions)
    assert f["pieces_with_parallels"] == 0.5
    assert f["range/bass"] == pytest.approx((7 + 9) / 2)  # C3-G3, C3-A3


# ---------------------------------------------------------------- the classifier test


def test_wilson_interval():
    low, high = C.wilson(50, 100)
    assert low == pytest.approx(0.404, abs=1e-3) and high == pytest.approx(0.596, abs=1e-3)
    low, high = C.wilson(100, 100)
    assert high == pytest.approx(1) and 0.96 < low < 0.97


def test_classifier_is_at_chance_on_two_samples_of_one_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((60, 20)), rng.standard_normal((60, 20))
    for kind in ("logistic", "boosting"):
        r = C.two_sample_test(a, b, kind=kind, seed=1, repeats=2)
        assert 0.35 < r["accuracy"] < 0.65, (kind, r)
        assert r["low"] < 0.5 < r["high"]


def test_classifier_tells_clearly_different_samples_apart():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 20))
    b = rng.standard_normal((40, 20))
    b[:, :3] += 4.0
    for kind in ("logistic", "boosting"):
        r = C.two_sample_test(a, b, kind=kind, seed=1, repeats=2)
        assert r["accuracy"] > 0.95, (kind, r)
        assert r["low"] > 0.85


def test_piece_vectors_leave_the_given_voice_out():
    a = _piece("I IV V7 I")
    b = {**a, "intervals": a["intervals"].copy()}
    b["intervals"][0] = np.roll(b["intervals"][0], 3)  # another soprano line
    assert np.array_equal(C.piece_vector(a, 0), C.piece_vector(b, 0))
    assert not np.array_equal(C.piece_vector(a, 1), C.piece_vector(b, 1))


# ---------------------------------------------------------------- rows


def _chorale(name, key, voices) -> Chorale:
    return Chorale(name, voices, key, "4/4", np.zeros(voices.steps, bool))


def test_mismatched_keeps_the_melody_and_moves_the_partner_to_its_tonic():
    own = _chorale("own", "D major", progression(C_MAJOR, "I IV V I " * 3).transpose(2))
    partner = _chorale("other", "C major", progression(C_MAJOR, "I vi IV V7 I"))  # shorter
    out = W.mismatched(own, partner, voice=0)
    assert out.steps == own.voices.steps
    assert np.array_equal(out.pitches[:, 0], own.voices.pitches[:, 0])
    # The partner's lower voices, up a tone, then silent to the bar line (the partner ends
    # 3 beats into its second bar), then again from its start.
    lower = partner.voices.pitches[:, 1:] + 2
    assert np.array_equal(out.pitches[:20, 1:], lower)
    assert (out.pitches[20:32, 1:] == -1).all()
    assert np.array_equal(out.pitches[32:48, 1:], lower[:16])


def test_mismatched_row_pairs_each_chorale_with_another_of_its_mode(corpus):
    chorales = corpus.chorales("valid")
    make = W.mismatched_row(chorales, seed=0)
    for ch in chorales:
        out = make(ch, 0)
        assert np.array_equal(out.pitches[:, 0], ch.voices.pitches[:, 0])
        assert not np.array_equal(out.pitches[:, 1:], ch.voices.pitches[:, 1:])


def test_run_row_records_refused_pieces():
    chorales = [_chorale(f"c{i}", "C major", progression(C_MAJOR, "I IV V I")) for i in range(3)]

    def make(ch, v):
        if ch.name == "c1":
            raise MelodyError("the melody has 65 bars; at most 64 can be harmonized")
        return ch.voices

    stats, skipped = W.run_row(make, chorales, 0)
    assert list(stats) == ["c0", "c2"] and list(skipped) == ["c1"]
    assert "65 bars" in skipped["c1"]


def test_key_text_reads_back():
    for tonic in range(12):
        for mode in P.MODES:
            assert P.parse_key(P.m21_key_name(tonic, mode)) == (tonic, mode)


@pytest.mark.slow
def test_evaluate_whole_on_bach_copies_and_broken_copies(corpus):
    """Bach's own voices as a 'model' row match the Bach row; a bass that sings one pitch
    throughout (struck where Bach's bass strikes) is far from Bach and easy to tell apart."""
    small = Corpus({"train": corpus.splits["train"], "valid": corpus.chorales("valid")[:12]})

    def one_pitch_bass(ch, v):
        p = ch.voices.pitches.copy()
        sounding = p[:, 3] >= 0
        p[sounding, 3] = p[sounding, 3][:1]  # one pitch throughout (none in a tune)
        return Voices(p, ch.voices.onsets)

    rows = {"copy": lambda ch, v: ch.voices, "one-pitch bass": one_pitch_bass}
    result = W.evaluate_whole(None, split="valid", rows=rows, corpus=small, draws=3)
    json.dumps(result, allow_nan=False)
    r = result["by_voice"]["soprano"]["rows"]
    assert list(r) == [W.BACH, W.FLOOR, W.MISMATCHED, "copy", "one-pitch bass"]
    assert r["copy"]["distances"] == r[W.BACH]["distances"]
    assert r["copy"]["mode_kept"] == 1 and r["copy"]["key_kept"] == 1
    assert r["copy"]["classifier"]["logistic"]["accuracy"] <= 0.55
    assert r["one-pitch bass"]["summary"]["intervals"] > 5 * r[W.BACH]["summary"]["intervals"]
    assert r["one-pitch bass"]["classifier"]["logistic"]["accuracy"] > 0.9
    assert r[W.FLOOR]["pieces"] == 12
    assert 0 < r[W.BACH]["summary"]["qualities"] < r[W.MISMATCHED]["summary"]["qualities"]
    text = W.tables(result)
    assert "one-pitch bass" in text and "Bach vs Bach" in text


@pytest.mark.slow
def test_evaluate_whole_runs_the_shipped_model(corpus):
    from bachgan.sampling import Harmonizer

    small = Corpus({"train": corpus.splits["train"], "valid": corpus.chorales("valid")[:4]})
    result = W.evaluate_whole(Harmonizer(), split="valid", corpus=small, draws=1)
    rows = result["by_voice"]["soprano"]["rows"]
    assert {"model", "model raw", "noise + decoder"} <= set(rows)
    assert all(rows[k]["pieces"] == 4 for k in ("model", "model raw", "noise + decoder"))
    tunes = result["tunes"]["soprano"]["model"]
    assert len(tunes) == 5 and all("ends_on_tonic" in t for t in tunes.values())


def test_reference_is_cached_and_rebuilt_when_the_chorales_change(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("BACHGAN_CACHE", str(tmp_path))
    few = corpus.splits["train"][:4]
    first = W.reference_stats(Corpus({"train": few}))
    written = W.reference_path().stat().st_mtime_ns
    again = W.reference_stats(Corpus({"train": few}))
    assert W.reference_path().stat().st_mtime_ns == written  # read, not written again
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(first, again) for k in a)
    moved = [Chorale(c.name, c.voices.transpose(1), c.key, c.meter, c.fermatas) for c in few]
    rebuilt = W.reference_stats(Corpus({"train": moved}))
    assert W.reference_path().stat().st_mtime_ns != written
    assert not np.array_equal(rebuilt[0]["register"], first[0]["register"])
    assert np.array_equal(rebuilt[0]["register"][:, 1:], first[0]["register"][:, :-1])


def test_targets_say_which_hold():
    """A row that meets every target reads 'yes' everywhere; one too far on chord quality,
    or nearer Bach than the floor allows only by passing the mismatched row, reads 'no'."""
    from bachgan.whole_tables import SUMMARY_LABELS, targets

    def row(d, **kw):
        cls = {"logistic": {"accuracy": kw.pop("acc", 0.6), "low": 0.5, "high": 0.7}}
        base = dict(mode_kept=0.95, key_kept=0.85, bass_repeats=0.04, parallels_per_100=0.05)
        base.update(closed=0.85, authentic_or_half=0.6, ends_on_tonic=1.0, classifier=cls)
        base.update(kw)
        return {**base, "summary": {k: d for k in SUMMARY_LABELS}}

    rows = {
        "Bach": row(0.1, bass_repeats=0.03, parallels_per_100=0.06),
        "Bach vs Bach": row(0.1),
        "mismatched": row(0.5),
        "model": row(0.14),
        "noise + decoder": row(0.9, acc=0.95),
    }
    assert all(t[3] == "yes" for t in targets(rows))
    rows["model"]["summary"]["qualities"] = 0.2  # 2x the floor
    rows["model"]["bass_repeats"] = 0.07  # more than twice Bach's 3%
    rows["model"]["closed"] = 0.7  # phrase ends closed, in their own keys: the target
    failed = [t[0] for t in targets(rows) if t[3] != "yes"]
    assert failed == [
        "chord quality distance <= 1.5x floor, < mismatched",
        "bass repeats <= 2x Bach's",
        "phrase ends authentic (in their own key) or half >= 80%",
    ]


def test_the_ending_is_judged_where_bachs_own_ends_on_the_tonic():
    """Bach's chorales that close on the dominant (a Phrygian ending) do not count against
    a row's endings: 'tonic_where_bach' is the share on the tonic where his is."""
    from bachgan.whole_compare import key_agreement

    def piece(tonic_end, key=(0, 0)):
        return {"key": np.array(key), "ends_on_tonic": np.array(int(tonic_end))}

    bach = [piece(True), piece(True), piece(False), piece(False)]
    mine = [piece(True), piece(False), piece(False), piece(True, key=(9, 1))]
    got = key_agreement(mine, bach)
    assert got["tonic_where_bach"] == 0.5  # 1 of the 2 where Bach's does
    assert got["key_kept"] == 0.75 and got["mode_kept"] == 0.75
