"""The voices' colours (issue 17, item 9): told apart with normal vision and with simulated
colour-vision deficiencies, as the pianoroll draws them; the given voice marked by more than
its colour."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from bachgan.plots import VOICE_COLOURS, interpolation_figure, pianoroll_figure
from bachgan.voices import Voices

ROOT = Path(__file__).resolve().parents[1]

# Machado, Oliveira & Fernandes (2009), "A Physiologically-based Model for Simulation of Color
# Vision Deficiency", IEEE TVCG 15(6), table of severity 1.0 (dichromacy: the cone type is
# missing), applied to linear RGB. Deuteranopia and protanopia are the common ones (about 1 in
# 12 men have a red-green deficiency); tritanopia is rare but checked too.
VISION = {
    "normal": np.eye(3),
    "protanopia": np.array(
        [
            [0.152286, 1.052583, -0.204868],
            [0.114503, 0.786281, 0.099216],
            [-0.003882, -0.048116, 1.051998],
        ]
    ),
    "deuteranopia": np.array(
        [
            [0.367322, 0.860646, -0.227968],
            [0.280085, 0.672501, 0.047413],
            [-0.011820, 0.042940, 0.968881],
        ]
    ),
    "tritanopia": np.array(
        [
            [1.255528, -0.076749, -0.178779],
            [-0.078411, 0.930809, 0.147602],
            [0.004733, 0.691367, 0.303900],
        ]
    ),
}
# CIE76 colour difference (Euclidean distance in CIELAB, D65). About 2.3 is just noticeable
# side by side; 20 is two colours one names differently at a glance, as a legend needs. The
# earlier palette's vermillion and orange were 18 apart under deuteranopia.
MIN_DELTA_E = 20.0


def _srgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white) of linear sRGB."""
    xyz = (
        np.array(
            [
                [0.4124564, 0.3575761, 0.1804375],
                [0.2126729, 0.7151522, 0.0721750],
                [0.0193339, 0.1191920, 0.9503041],
            ]
        )
        @ np.clip(linear_rgb, 0, 1)
        / np.array([0.95047, 1.0, 1.08883])
    )
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def seen(srgb: np.ndarray, vision: str) -> np.ndarray:
    """CIELAB of an sRGB colour as someone with `vision` sees it."""
    return _lab(VISION[vision] @ _linear(srgb))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def test_the_simulation_is_the_published_one():
    """Grey stays grey (each row sums to 1), and red and green, far apart for normal vision,
    come close under deuteranopia: the model does what it is used for here."""
    for m in VISION.values():
        assert np.allclose(m.sum(axis=1), 1.0, atol=1e-3)
    red, green = _srgb("#FF0000"), _srgb("#00A000")
    assert delta_e(seen(red, "normal"), seen(green, "normal")) > 100
    assert delta_e(seen(red, "deuteranopia"), seen(green, "deuteranopia")) < 30
    assert delta_e(seen(_srgb("#808080"), "protanopia"), seen(_srgb("#808080"), "normal")) < 1


def _page_background() -> np.ndarray:
    theme = (ROOT / ".streamlit/config.toml").read_text()
    return _srgb(re.search(r'^backgroundColor = "(#[0-9A-Fa-f]{6})"', theme, re.M)[1])


def drawn_colours(fig) -> dict[str, np.ndarray]:
    """Each trace's fill as it appears: its colour at its opacity over the page."""
    page = _page_background()
    out = {}
    for t in fig.data:
        alpha = 1.0 if t.marker.opacity is None else t.marker.opacity
        out[t.name] = alpha * _srgb(t.marker.color) + (1 - alpha) * page
    return out


def _four_voices() -> Voices:
    melody = Voices.from_pitches([64] * 16 + [67] * 16)
    return Voices.stack([melody.transpose(t) for t in (12, 0, -12, -24)])


def test_the_pianoroll_draws_each_voice_in_its_colour():
    fig = pianoroll_figure(_four_voices(), given_voice=0)
    by_name = {t.name: t.marker.color for t in fig.data}
    assert by_name == {
        "Soprano (given)": VOICE_COLOURS[0],
        "Alto": VOICE_COLOURS[1],
        "Tenor": VOICE_COLOURS[2],
        "Bass": VOICE_COLOURS[3],
    }
    assert len(set(VOICE_COLOURS)) == 4


@pytest.mark.parametrize("vision", list(VISION))
def test_the_four_voices_are_told_apart(vision):
    """Every pair of voices, as defined and as drawn (the voices not given are translucent),
    at least MIN_DELTA_E apart; and every voice that far from the page behind it."""
    fig = pianoroll_figure(_four_voices(), given_voice=None)
    for colours in ([_srgb(c) for c in VOICE_COLOURS], list(drawn_colours(fig).values())):
        labs = [seen(c, vision) for c in colours]
        closest = min(delta_e(a, b) for a, b in itertools.combinations(labs, 2))
        assert closest >= MIN_DELTA_E, (vision, round(closest, 1))
        page = seen(_page_background(), vision)
        assert min(delta_e(c, page) for c in labs) >= MIN_DELTA_E, vision


@pytest.mark.parametrize("given", range(4))
def test_the_given_voice_is_marked_by_more_than_colour(given):
    """Its own colour, plus a thick outline and stripes that no other voice has, in the
    pianoroll and in each frame of an interpolation."""
    v = _four_voices()
    for traces in (
        pianoroll_figure(v, given).data,
        *(f.data for f in interpolation_figure([v, v.transpose(1)], given_voice=given).frames),
    ):
        marked = [t for t in traces if t.name.endswith("(given)")]
        others = [t for t in traces if not t.name.endswith("(given)")]
        assert len(marked) == 1 and len(others) == 3
        (m,) = marked
        assert m.marker.color == m.marker.pattern.bgcolor == VOICE_COLOURS[given]
        assert m.marker.pattern.shape and not any(t.marker.pattern.shape for t in others)
        assert m.marker.line.width >= 2 * max(t.marker.line.width for t in others)
