"""Chorale parsing, windows, splits and the tf.data pipeline, on the real corpus."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from music21 import corpus as m21corpus

from bachgan import data
from bachgan.pianoroll import from_roll, to_roll
from bachgan.presets import get_preset
from bachgan.voices import Voices


def _path(name):
    return str(next(p for p in m21corpus.getComposer("bach") if p.name.startswith(name + ".")))


def test_parse_real_chorale_keeps_onsets_pickup_and_key():
    name, ch, why = data.parse_chorale(_path("bwv253"))
    assert why == "" and ch is not None and name == "bwv253"
    v = ch.voices
    assert v.n_voices == 4
    means = [v.pitches[:, i][v.pitches[:, i] >= 0].mean() for i in range(4)]
    assert means == sorted(means, reverse=True), "voices are in SATB order"
    # Repeated notes stay separate: some onsets fall where the pitch does not change.
    same = (v.pitches[1:] == v.pitches[:-1]) & (v.pitches[1:] >= 0)
    assert (v.onsets[1:] & same).any()
    assert ch.key and ch.meter in data.BAR_STEPS_OK


def test_parse_skips_with_reasons():
    _, ch, why = data.parse_chorale(_path("bwv1.6"))  # horn part beside SATB
    assert ch is None and "5 parts" in why


def test_pickup_aligns_bar_lines(corpus):
    """With the pickup padded, every chorale's first downbeat is at step 16 or 0."""
    for ch in corpus.splits["train"][:40]:
        first = np.argmax((ch.voices.pitches >= 0).any(1))
        assert first < 16


def test_chorales_are_named_by_bwv_and_title_from_music21():
    assert data.chorale_title("bwv269") == "BWV 269 — Aus meines Herzens Grunde"
    assert data.chorale_title("bwv248.12-2") == "BWV 248.12-2 — Ermuntre dich, mein schwacher Geist"
    assert data.chorale_title("bwv281") == "BWV 281 — Christus, der ist mein Leben"
    assert data.chorale_title("bwv1.6") == "BWV 1.6"  # music21 lists no title for it
    assert data.chorale_title("jsb-test-3") == "jsb-test-3"


def test_cache_refuses_corrupt_or_older_files(tmp_path, monkeypatch, corpus):
    path = data.cache_path()
    good = path.read_bytes()
    monkeypatch.setenv("BACHGAN_CACHE", str(tmp_path))
    bad = data.cache_path()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises((OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)):
        data._load_cache(bad)
    bad.write_bytes(good)
    assert data._load_cache(bad).splits["train"]
    # An older format version is refused too, so load_music21 parses afresh.
    monkeypatch.setattr(data, "CACHE_VERSION", data.CACHE_VERSION + 1)
    with pytest.raises(ValueError, match="old cache"):
        data._load_cache(bad)


def test_split_is_by_chorale_and_deterministic(corpus):
    names = corpus.split_names()
    sets = {k: set(v) for k, v in names.items()}
    assert not sets["train"] & sets["test"] and not sets["train"] & sets["valid"]
    assert all(data.split_of(n) == k for k, v in names.items() for n in v)
    assert len(sets["test"]) >= 20 and len(sets["train"]) > 200


def _relative(voices) -> np.ndarray:
    """Pitches relative to the first soprano note, silence as -1000 (out of any interval's
    reach): a transposed copy of a chorale compares equal."""
    p = voices.pitches.astype(int)
    sop = p[:, 0][p[:, 0] >= 0]
    return np.where(p >= 0, p - sop[0], -1000)


def test_no_held_out_chorale_is_a_copy_of_a_training_one(corpus):
    """The corpus holds bwv277, bwv281 and bwv366 as MusicXML and as Humdrum; named apart, the
    Humdrum bwv281 fell in the test split while its MusicXML twin trained the model. Other
    settings of the same tune are allowed (Bach harmonized tunes many times; the closest pair
    across splits agrees on 66% of its steps); a copy agrees on nearly all of them."""
    train = [(c.name, _relative(c.voices)) for c in corpus.splits["train"]]
    for held in corpus.splits["test"] + corpus.splits["valid"]:
        mine = _relative(held.voices)
        for name, theirs in train:
            n = min(len(mine), len(theirs))
            same = (mine[:n] == theirs[:n]).all(axis=1).mean()
            assert same < 0.9, f"{held.name} repeats {name} ({same:.0%} of steps)"


def test_no_test_window_reaches_training(corpus):
    """Every window the pipeline yields comes from a training chorale."""
    p = get_preset("tiny", transpose=(0, 0), condition_voices=(0,))
    train = data.stack_windows(corpus.windows("train"))
    held = data.stack_windows(corpus.windows("test") + corpus.windows("valid"))
    train_keys = {w.tobytes() for w in train}
    held_only = {w.tobytes() for w in held} - train_keys
    ds = data.make_dataset(train, p, seed=0)
    seen = 0
    for roll, _cond, _voice in ds.take(60):
        for r in roll.numpy():
            key = from_roll(r, p.low).pitches.tobytes()
            assert key not in held_only
            seen += key in train_keys
    # Decoding merges repeated notes, so compare on pitches only; all must be training windows.
    assert seen == 60 * p.batch_size * p.critic_steps


def test_windows_every_bar(corpus):
    ch = corpus.splits["train"][0]
    ws = data.windows(ch.voices, hop=16)
    assert len(ws) == (ch.voices.steps - 32) // 16 + 1
    assert all(w.steps == 32 for w in ws)
    assert ws[1].pitches[:16].tolist() == ws[0].pitches[16:].tolist()


def test_roll_round_trip():
    v = Voices.from_pitches(np.array([[72, 67, 64, 48], [72, 67, -1, 48], [74, 65, 62, 43]]))
    roll = to_roll(v, low=28, n_pitches=64)
    assert roll.shape == (3, 64, 4) and set(np.unique(roll)) == {-1.0, 1.0}
    assert from_roll(roll, 28) == v
    with pytest.raises(ValueError):
        to_roll(Voices.from_pitches(np.array([[100]])), low=28, n_pitches=64)


def test_augmentation_stays_in_range(corpus):
    p = get_preset("tiny")
    train = data.stack_windows(corpus.windows("train"))
    lo, hi = data.shift_bounds(train, p.low, p.n_pitches, p.transpose)
    assert lo.min() >= -5 and hi.max() <= 6
    ds = data.make_dataset(train, p, seed=1)
    for roll, cond, voice in ds.take(10):
        r = roll.numpy()
        assert r.shape[1:] == (32, p.n_pitches, 4)
        on = r > 0
        assert (on.sum(2) <= 1).all(), "one pitch per voice and step"
        c = cond.numpy()[..., 0]
        v = voice.numpy()
        assert np.array_equal(c, r[np.arange(len(v)), :, :, v]), "condition is that voice's track"
        assert set(v) <= set(p.condition_voices)


def test_augmentation_transposes_each_window_by_one_shift_within_its_bounds(corpus):
    """A one-window dataset: every sample is that window, moved as a whole by one shift."""
    p = get_preset("tiny")
    window = data.stack_windows(corpus.windows("train"))[:1]
    (lo,), (hi,) = data.shift_bounds(window, p.low, p.n_pitches, p.transpose)
    w, shifts = window[0], []
    for roll, _, _ in data.make_dataset(window, p, seed=1).take(3):
        r = roll.numpy()  # (n, 32, P, 4)
        for x in np.where((r > 0).any(2), r.argmax(2) + p.low, -1):
            moved = np.unique(x[w >= 0] - w[w >= 0])
            assert len(moved) == 1 and (x[w < 0] == -1).all()
            shifts.append(int(moved[0]))
    assert lo <= min(shifts) and max(shifts) <= hi
    assert len(set(shifts)) >= min(5, hi - lo + 1), "shifts vary from sample to sample"


def test_jsb_json_and_npz(tmp_path):
    doc = {"train": [[[72, 67, 64, 48], [72, 67, 64, -1]]], "valid": [], "test": []}
    path = tmp_path / "jsb.json"
    path.write_text(json.dumps(doc))
    c = data.load_jsb(path)
    assert c.splits["train"][0].voices.pitches.tolist() == [[72, 67, 64, 48], [72, 67, 64, -1]]
    arr = np.array([[72.0, 67.0, 64.0, np.nan]])
    npz = tmp_path / "jsb.npz"
    np.savez(
        npz,
        train=np.array([arr], dtype=object),
        valid=np.array([], dtype=object),
        test=np.array([], dtype=object),
    )
    assert data.load_jsb(npz).splits["train"][0].voices.pitches.tolist() == [[72, 67, 64, -1]]


def test_shared_jsb_file_loads_when_present():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "Jsb16thSeparated.json"
    if not path.is_file():
        pytest.skip("the shared JSB copy is only on the development machine")
    c = data.load_jsb(path)
    assert {k: len(v) for k, v in c.splits.items()} == {"train": 229, "valid": 76, "test": 77}


def test_voices_concat_plays_pieces_one_after_another():
    a = Voices.from_pitches([[72, 64, 55, 48]] * 3)
    b = Voices.from_pitches([[72, 65, 57, 41], [-1, 65, 57, 41]])
    both = Voices.concat([a, b])
    assert both.steps == 5 and both.slice(0, 3) == a and both.slice(3, 5) == b
    assert both.notes(0) == [(0, 3, 72), (3, 4, 72)], "a repeated note starts again"
