"""Plotly figures for the app: pianorolls, latent interpolations, metrics beside Bach.

Pure functions from `Voices` (and metric dicts) to `plotly.graph_objects.Figure`, so the
pages stay thin and the figures can be tested without a browser. Notes are horizontal bars
(base = start beat, length = duration), one trace per voice: hovering anywhere on a note
names it, and Plotly's zoom and pan work on both axes.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from bachgan.metrics import HEADLINE, TARGETS, target_text
from bachgan.voices import STEPS_PER_BAR, STEPS_PER_BEAT, VOICE_NAMES, Voices, note_name

# Soprano, alto, tenor, bass: Okabe-Ito's orange and sky blue, Paul Tol's green and indigo.
# Warm against cool and light against dark, so every pair stays apart for normal vision and
# under simulated protanopia, deuteranopia and tritanopia, drawn translucent or not
# (tests/test_colours.py states the distance). Okabe-Ito alone offers no four that do: its
# vermillion and orange, or green and reddish purple, come close under deuteranopia.
VOICE_COLOURS = ("#E69F00", "#56B4E9", "#117733", "#332288")
# The given voice, beyond its colour: a thick outline and stripes.
GIVEN_OUTLINE, OTHER_OUTLINE = 2.5, 0.5
# For st.plotly_chart(config=...): zoom, pan, reset and save stay; a short toolbar fits
# beside a title on a phone.
CHART_CONFIG = {
    "displaylogo": False,
    "scrollZoom": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"],
}


def _stripes(colour: str) -> dict:
    """Plotly's bar pattern for the given voice: its colour behind, stripes dark on a light
    fill and white on a dark one (Plotly's default leaves the fill transparent)."""
    r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
    light = 0.299 * r + 0.587 * g + 0.114 * b > 128
    stripe = "#111111" if light else "#FFFFFF"
    return {"shape": "/", "bgcolor": colour, "fgcolor": stripe, "solidity": 0.25, "size": 8}


def voice_label(i: int) -> str:
    """'Soprano' .. 'Bass', then 'Voice 5' (as the MIDI instruments are named)."""
    return VOICE_NAMES[i].title() if i < len(VOICE_NAMES) else f"Voice {i + 1}"


def _beats(steps: int) -> str:
    b = steps / STEPS_PER_BEAT
    return f"{b:g} beat" + ("" if b == 1 else "s")


def _where(step: int, bar_steps: int) -> str:
    bar, pos = divmod(step, bar_steps)
    return f"bar {bar + 1} beat {1 + pos / STEPS_PER_BEAT:g}"


def note_hover(voice: str, start: int, end: int, pitch: int, bar_steps: int = STEPS_PER_BAR):
    """'Alto C#4, bar 2 beat 3, 1 beat' - what a musician wants to read on hover."""
    return f"{voice} {note_name(pitch)}, {_where(start, bar_steps)}, {_beats(end - start)}"


def _voice_traces(voices: Voices, given_voice: int | None, bar_steps: int) -> list[go.Bar]:
    """One bar trace per voice; the given voice is outlined, striped and drawn on top."""
    traces = []
    order = [i for i in range(voices.n_voices) if i != given_voice]
    order += [] if given_voice is None or given_voice >= voices.n_voices else [given_voice]
    for i in order:
        notes = voices.notes(i)
        name = voice_label(i)
        given = i == given_voice
        colour = VOICE_COLOURS[i % len(VOICE_COLOURS)]
        traces.append(
            go.Bar(
                name=f"{name} (given)" if given else name,
                orientation="h",
                base=[s / STEPS_PER_BEAT for s, _, _ in notes],
                x=[(e - s) / STEPS_PER_BEAT for s, e, _ in notes],
                y=[p for _, _, p in notes],
                width=0.85,
                marker={
                    "color": colour,
                    "line": {
                        "color": "#111111",
                        "width": GIVEN_OUTLINE if given else OTHER_OUTLINE,
                    },
                    "opacity": 1.0 if given else 0.8,
                    "pattern": _stripes(colour) if given else {},
                },
                hovertext=[note_hover(name, s, e, p, bar_steps) for s, e, p in notes],
                hoverinfo="text",
                # Stable legend order S, A, T, B even though the given voice is drawn last.
                legendrank=i,
            )
        )
    return traces


# Axis labels and titles dark enough to read at 12 px on the app's cream background (about
# 10:1; Streamlit's chart theme would make them grey at 3.6:1).
TEXT_COLOUR = "#3A352E"


def _layout(
    fig: go.Figure, steps: int, pitch_lo: int, pitch_hi: int, title: str, bar_steps, extra=0
):
    """Bar lines, bar-numbered x axis, C's labelled on the y axis; `extra` px of height
    below for controls."""
    beats_per_bar = bar_steps / STEPS_PER_BEAT
    n_bars = max(1, math.ceil(steps / bar_steps))
    height = (420 if title else 390) + extra
    fig.update_layout(
        # The toolbar takes the top 30 px: the title goes under it, so that on a narrow
        # screen neither covers the other, and the toolbar never covers the highest notes.
        title={
            "text": title,
            "font": {"size": 15},
            "x": 0,
            "xanchor": "left",
            "y": 1 - 30 / height,
            "yanchor": "top",
        }
        if title
        else None,
        font={"color": TEXT_COLOUR},
        barmode="overlay",
        bargap=0,
        height=height,
        margin={"l": 50, "r": 10, "t": 62 if title else 32, "b": 70 + extra},
        # Under the plot, so that a legend wrapping onto two lines never covers the title.
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
        hoverlabel={"namelength": 0},
        dragmode="zoom",
        shapes=[
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": b * beats_per_bar,
                "x1": b * beats_per_bar,
                "y0": 0,
                "y1": 1,
                "line": {"color": "rgba(120,120,120,0.5)", "width": 1},
                "layer": "below",
            }
            for b in range(n_bars + 1)
        ],
    )
    every = max(1, n_bars // 16)  # at most ~16 bar labels
    fig.update_xaxes(
        range=[0, n_bars * beats_per_bar],
        tickvals=[b * beats_per_bar for b in range(0, n_bars, every)],
        ticktext=[f"bar {b + 1}" for b in range(0, n_bars, every)],
        title=None,
        showgrid=False,
    )
    cs = [p for p in range(pitch_lo - pitch_lo % 12, pitch_hi + 1, 12) if p >= pitch_lo]
    fig.update_yaxes(
        range=[pitch_lo - 1, pitch_hi + 1],
        tickvals=cs,
        ticktext=[note_name(p) for p in cs],
        title=None,
        gridcolor="rgba(120,120,120,0.15)",
    )
    return fig


def _pitch_span(parts: list[Voices]) -> tuple[int, int]:
    sounding = [int(v.pitches[v.pitches >= 0].min()) for v in parts if (v.pitches >= 0).any()]
    highest = [int(v.pitches.max()) for v in parts if (v.pitches >= 0).any()]
    if not sounding:
        return 48, 72
    return min(sounding) - 2, max(highest) + 2


def pianoroll_figure(
    voices: Voices, given_voice: int | None = None, title: str = "", bar_steps: int = STEPS_PER_BAR
) -> go.Figure:
    """Four coloured voices as note rectangles, the given voice outlined and striped, bar
    lines, zoomable."""
    fig = go.Figure(_voice_traces(voices, given_voice, bar_steps))
    return _layout(fig, voices.steps, *_pitch_span([voices]), title, bar_steps)


def interpolation_figure(
    frames: list[Voices],
    labels: list[str] | None = None,
    given_voice: int | None = None,
    title: str = "",
    bar_steps: int = STEPS_PER_BAR,
) -> go.Figure:
    """An animation with one pianoroll per latent step, a play button and a slider.

    Axes are fixed over all frames so that only the notes move.
    """
    if not frames:
        raise ValueError("interpolation_figure needs at least one Voices")
    labels = labels or [f"step {k + 1}" for k in range(len(frames))]
    data = [_voice_traces(v, given_voice, bar_steps) for v in frames]
    fig = go.Figure(
        data=data[0],
        frames=[go.Frame(data=d, name=lab) for d, lab in zip(data, labels)],
    )
    _layout(fig, max(v.steps for v in frames), *_pitch_span(frames), title, bar_steps, extra=95)
    play = {"frame": {"duration": 900, "redraw": True}, "transition": {"duration": 0}}
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0,
                "y": 0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 120, "r": 10},  # under the slider: no overlap on a phone
                "showactive": False,
                "buttons": [
                    {"label": "▶ Play", "method": "animate", "args": [None, play]},
                    {
                        "label": "❚❚ Pause",
                        "method": "animate",
                        "args": [[None], {"mode": "immediate", "frame": {"duration": 0}}],
                    },
                ],
            }
        ],
        sliders=[
            {
                "x": 0,
                "y": 0,
                "len": 1.0,
                "yanchor": "top",
                "pad": {"t": 40},
                "currentvalue": {"prefix": "showing: ", "xanchor": "left"},
                "steps": [
                    {
                        "label": lab,
                        "method": "animate",
                        "args": [[lab], {"mode": "immediate", "frame": {"redraw": True}}],
                    }
                    for lab in labels
                ],
            }
        ],
    )
    return fig


# ---------------------------------------------------------------- metrics


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.3f}" if abs(x) < 0.1 else f"{x:.2f}"


def _meets(key: str, x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or key not in TARGETS:
        return ""
    lo, hi = TARGETS[key]
    return "✓ yes" if lo <= x <= hi else "✗ no"


def metrics_table(
    result: dict, reference: dict | None = None, column: str = "this result"
) -> list[dict]:
    """Rows for st.table: each headline metric for this result, Bach, and the target.

    `reference` may be None (Bach's figures not loaded yet): that column says so.
    """
    rows = []
    for key, label in HEADLINE:
        x = result.get(key)
        rows.append(
            {
                "metric": label,
                column: _fmt(x),
                "Bach": _fmt(reference.get(key)) if reference else "…",
                # st.table reads cells as Markdown, where a leading ">" is a quote
                "target": target_text(key).replace(">=", "≥").replace("<=", "≤"),
                "meets target": _meets(key, x),
            }
        )
    return rows
