"""harmonize(): seeds, the given voice kept note for note, long melodies, latents, clean-up."""

from __future__ import annotations

import numpy as np
import pytest

from bachgan import metrics, sampling
from bachgan.melody import MelodyError, builtin_tune, melody_from_text
from bachgan.voices import Voices, note_name


@pytest.fixture(scope="module")
def harmonizer():
    return sampling.Harmonizer()  # the shipped model under checkpoints/


def test_same_seed_same_chorale_other_seed_differs(harmonizer):
    melody = builtin_tune("Twinkle, Twinkle, Little Star")
    a = harmonizer.harmonize(melody, "soprano", seed=11)
    b = sampling.Harmonizer().harmonize(melody, "soprano", seed=11)
    c = harmonizer.harmonize(melody, "soprano", seed=12)
    assert a.voices == b.voices
    assert not np.array_equal(a.z, c.z)
    assert a.voices != c.voices, "another seed, another harmony (not only another latent)"


def test_truncation_changes_the_result_and_its_latent_makes_it_again(harmonizer):
    melody = builtin_tune("Old Hundredth")
    safe = harmonizer.harmonize(melody, "soprano", seed=5, truncation=0.3)
    wild = harmonizer.harmonize(melody, "soprano", seed=5, truncation=1.5)
    assert safe.voices != wild.voices
    assert harmonizer.harmonize(melody, "soprano", z=wild.z).voices == wild.voices


@pytest.mark.parametrize("voice", ["soprano", "alto", "tenor", "bass"])
def test_given_voice_kept_note_for_note(harmonizer, voice):
    # Repeated notes (C C, G G) must stay two notes each.
    melody, _ = melody_from_text("C4q C4 G4 G4 | A4 A4 G4h | F4q F4 E4 E4 | D4 D4 C4h", voice)
    out = harmonizer.harmonize(melody, voice, seed=3).voices
    i = ["soprano", "alto", "tenor", "bass"].index(voice)
    assert np.array_equal(out.pitches[:, i], melody.pitches[:, 0])
    assert np.array_equal(out.onsets[:, i], melody.onsets[:, 0])
    assert len(out.notes(i)) == len(melody.notes(0)) == 14


def test_cleaned_output_is_singable(harmonizer):
    melody = builtin_tune("Old Hundredth")
    r = harmonizer.harmonize(melody, "soprano", seed=1)
    v = r.voices
    p = v.pitches
    both = (p[:, :-1] >= 0) & (p[:, 1:] >= 0)
    assert not (both & (p[:, :-1] < p[:, 1:])).any(), "voices stay in SATB order"
    m = metrics.window_metrics(v)
    assert m["parallel_per_100"] < 2.0
    assert 0.0 <= r.cleanup["changed_share"] <= 1.0
    raw = harmonizer.harmonize(melody, "soprano", seed=1, raw=True)
    assert raw.voices.steps == v.steps


def test_long_melody_keeps_its_length(harmonizer):
    melody = Voices.from_pitches(np.tile([60, 62, 64, 65, 67, 65, 64, 62], 4 * 13)[:, None])
    assert melody.steps == 416  # 26 bars
    out = harmonizer.harmonize(melody, "soprano", seed=0).voices
    assert out.steps == melody.steps
    assert (out.pitches[:, 1:] >= 0).mean() > 0.9


def test_odd_length_melody(harmonizer):
    melody, _ = melody_from_text("C5q D5 E5")  # under one bar
    out = harmonizer.harmonize(melody, "soprano", seed=0).voices
    assert out.steps == melody.steps


def test_too_long_melody_is_a_clear_error(harmonizer):
    melody = Voices.from_pitches(np.full((65 * 16, 1), 67))
    with pytest.raises(MelodyError, match="64"):
        harmonizer.harmonize(melody, "soprano", seed=0)


def test_empty_melody_is_a_clear_error(harmonizer):
    with pytest.raises(MelodyError, match="no notes"):
        harmonizer.harmonize(Voices.empty(32, 1), "soprano", seed=0)


def test_latent_tools(harmonizer):
    p = harmonizer.preset
    a = sampling.latent_bars(2, p, seed=1)
    b = sampling.latent_bars(2, p, seed=2)
    assert np.array_equal(a, sampling.latent_bars(2, p, seed=1))
    assert np.allclose(sampling.slerp(a, b, 0.0), a, atol=1e-5)
    assert np.allclose(sampling.slerp(a, b, 1.0), b, atol=1e-5)
    mid = sampling.slerp(a, b, 0.5)
    assert np.linalg.norm(mid) == pytest.approx(
        (np.linalg.norm(a) + np.linalg.norm(b)) / 2, rel=0.2
    )
    r = sampling.reroll_bar(a, 1, seed=9, preset=p)
    assert np.array_equal(r[0], a[0]) and not np.array_equal(r[1], a[1])
    d = sampling.random_direction(a.shape, seed=4)
    assert np.allclose(sampling.step(a, d, 0.0), a)
    path = sampling.interpolation(a, b, 5)
    assert len(path) == 5 and np.allclose(path[0], a, atol=1e-5)
    assert np.allclose(path[-1], b, atol=1e-5) and np.allclose(path[2], mid)
    walked = sampling.walk(a, d, 4, 0.1)
    assert np.allclose(walked[0], a) and np.allclose(walked[3] - walked[2], 0.1 * d, atol=1e-5)
    assert np.abs(sampling.truncate(a, 0.5)).max() <= np.abs(a).max() * 0.5 + 1e-6
    melody = builtin_tune("Ode to Joy (Beethoven)").slice(0, 32)
    out = harmonizer.harmonize(melody, "soprano", z=mid)
    assert out.voices.steps == 32


def test_model_range_is_checked(harmonizer):
    melody = Voices.from_pitches(np.full((32, 1), 120))
    p = harmonizer.preset
    lo, hi = (note_name(m) for m in (p.low, p.low + p.n_pitches - 1))
    with pytest.raises(MelodyError, match=f"range, {lo} to {hi}"):  # note names, not numbers
        harmonizer.harmonize(melody, "soprano", seed=0)


def test_a_four_voice_input_gives_its_own_voice(harmonizer):
    bach = melody_from_text("C5q D5 E5 F5 | G5w", fit_range=False)[0]
    bass = melody_from_text("C3q B2 A2 G2 | C3w", fit_range=False)[0]
    four = Voices.stack([bach, bach.transpose(-5), bach.transpose(-12), bass])
    out = harmonizer.harmonize(four, "bass", seed=0)
    assert out.voices.voice(3) == bass  # the given bass, not the soprano


def test_noise_harmonizer_runs_the_pipeline_without_a_model(harmonizer):
    """The ablation's 'no model' row: the clean-up on uniform noise, the melody kept."""
    from bachgan.evaluate import NoiseHarmonizer

    melody = builtin_tune("Old Hundredth")
    noise = NoiseHarmonizer(harmonizer.preset, seed=0)
    assert not hasattr(noise, "generator")
    out = noise.harmonize(melody, "soprano", seed=1)
    assert out.voices.voice(0) == melody
    assert abs(out.raw_roll.mean()) < 0.05  # uniform on [-1, 1]; a model's roll is mostly -1
    again = NoiseHarmonizer(harmonizer.preset, seed=0).harmonize(melody, "soprano", seed=1)
    assert again.voices == out.voices  # its own seed, not the latent's, decides the noise
    assert out.voices != harmonizer.harmonize(melody, "soprano", seed=1).voices
