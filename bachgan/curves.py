"""Plotly figures of a training run: losses over iterations and musical metrics against Bach.

Pure functions from metrics.jsonl rows (dicts with `iteration`) to figures, so the Train
page stays thin and the figures are testable without a browser. The musical panels follow
the DeepComposer lab's plots: the run's metric as a line, Bach's own figure as a dashed
horizontal line, and the target (`metrics.TARGETS`) as a shaded band.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bachgan.metrics import HEADLINE, TARGETS
from bachgan.plots import TEXT_COLOUR

LOSSES = (
    ("critic_loss", "Critic loss"),
    ("generator_loss", "Generator loss"),
    ("wasserstein", "Wasserstein estimate"),  # the critic's real - fake score
    ("gradient_penalty", "Gradient penalty"),
)
# Metrics of cleaned-up voices: one pitch per voice, so multi_pitch_rate is always 0 there.
MUSIC_KEYS = tuple(k for k, _ in HEADLINE if k != "multi_pitch_rate")
MUSIC_LABELS = dict(HEADLINE)
RUN_COLOUR = "#0072B2"
BACH_COLOUR = "#555555"
TARGET_FILL = "rgba(0,158,115,0.12)"
MAX_POINTS = 2000


def ema(values, weight: float) -> np.ndarray:
    """TensorBoard-style exponential smoothing (debiased, NaNs carried over)."""
    y = np.asarray(values, dtype=float)
    if not 0 < weight < 1 or y.size == 0:
        return y
    out = np.empty_like(y)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(y):
        if math.isnan(v):
            out[i] = math.nan
            continue
        acc = weight * acc + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = acc / norm
    return out


def _thin(x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_POINTS):
    """Every k-th point so a browser draws at most `max_points` per line (last kept)."""
    if len(x) <= max_points:
        return (x, *ys)
    idx = np.unique(np.r_[np.arange(0, len(x), math.ceil(len(x) / max_points)), len(x) - 1])
    return (x[idx], *(y[idx] for y in ys))


def series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, values) of the rows that have a finite number under `key`."""
    pts = [
        (r["iteration"], float(r[key]))
        for r in rows
        if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))
    ]
    if not pts:
        return np.zeros(0), np.zeros(0)
    x, y = zip(*sorted(pts))
    return np.asarray(x), np.asarray(y)


def _empty(message: str, height: int = 300) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def loss_figure(rows: list[dict], smoothing: float = 0.0) -> go.Figure:
    """Four panels vs iteration; with smoothing the raw line stays faint behind the smooth one."""
    if not rows:
        return _empty("No iterations yet: the curves appear after the first one.")
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in LOSSES], shared_xaxes=True)
    for i, (key, title) in enumerate(LOSSES):
        r, c = divmod(i, 2)
        x, y = series(rows, key)
        if not len(x):
            continue
        smooth = ema(y, smoothing)
        x, y, smooth = _thin(x, y, smooth)
        short = title.split(" (")[0]
        if smoothing > 0:
            fig.add_scatter(
                x=x,
                y=y,
                mode="lines",
                line={"color": RUN_COLOUR, "width": 1},
                opacity=0.25,
                name=f"{short} (raw)",
                showlegend=False,
                hoverinfo="skip",
                row=r + 1,
                col=c + 1,
            )
        fig.add_scatter(
            x=x,
            y=smooth,
            mode="lines",
            line={"color": RUN_COLOUR, "width": 2},
            name=short,
            showlegend=False,
            hovertemplate="iteration %{x}: %{y:.3f}<extra>" + short + "</extra>",
            row=r + 1,
            col=c + 1,
        )
    fig.update_xaxes(title_text="iteration", row=2)
    fig.update_layout(
        height=480, margin={"l": 40, "r": 10, "t": 40, "b": 40}, font={"color": TEXT_COLOUR}
    )
    fig.update_annotations(font_size=12)
    return fig


def _target_band(key: str, top: float) -> tuple[float, float] | None:
    if key not in TARGETS:
        return None
    lo, hi = TARGETS[key]
    return (lo if math.isfinite(lo) else 0.0, hi if math.isfinite(hi) else top)


def music_figure(
    rows: list[dict], reference: dict | None = None, keys: tuple[str, ...] = MUSIC_KEYS
) -> go.Figure:
    """One panel per headline metric: the run's line, Bach dashed, the target band shaded.

    `reference` is Bach's figures under the same metric names (e.g.
    `bachgan.evaluate.bach_reference()`); without it the dashed lines are left out.
    """
    keys = tuple(k for k in keys if len(series(rows, f"music/{k}")[0]))
    if not keys:
        return _empty("No musical metrics yet: they are measured every few dozen iterations.")
    reference = reference or {}
    cols = 2 if len(keys) > 1 else 1
    nrows = math.ceil(len(keys) / cols)
    titles = [MUSIC_LABELS.get(k, k) for k in keys]
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=titles, vertical_spacing=0.12)
    for i, key in enumerate(keys):
        r, c = divmod(i, cols)
        x, y = series(rows, f"music/{key}")
        ref = reference.get(key)
        ref = float(ref) if isinstance(ref, (int, float)) and math.isfinite(ref) else None
        lo, hi = TARGETS.get(key, (-math.inf, math.inf))
        finite = [*y, *(v for v in (lo, hi, ref) if v is not None and math.isfinite(v))]
        top = max(finite) * 1.15 + 1e-6
        # The line first: plotly skips shapes on subplots that are still empty.
        fig.add_scatter(
            x=x,
            y=y,
            mode="lines+markers",
            marker={"size": 4},
            line={"color": RUN_COLOUR, "width": 2},
            name="this run",
            showlegend=False,
            hovertemplate="iteration %{x}: %{y:.3f}<extra></extra>",
            row=r + 1,
            col=c + 1,
        )
        band = _target_band(key, top)
        if band:
            fig.add_hrect(
                y0=band[0],
                y1=band[1],
                fillcolor=TARGET_FILL,
                line_width=0,
                layer="below",
                row=r + 1,
                col=c + 1,
            )
        if ref is not None:
            fig.add_hline(
                y=ref,
                line={"color": BACH_COLOUR, "dash": "dash", "width": 1.5},
                row=r + 1,
                col=c + 1,
            )
        fig.update_yaxes(range=[0, top], row=r + 1, col=c + 1)
    # Legend entries that explain the three kinds of marks.
    legend = [
        ("this run", {"color": RUN_COLOUR, "width": 2}),
        ("Bach (held-out chorales)", {"color": BACH_COLOUR, "dash": "dash"}),
        ("target", {"color": "rgba(0,158,115,0.5)", "width": 10}),
    ]
    for name, line in legend:
        if name.startswith("Bach") and not reference:
            continue
        fig.add_scatter(x=[None], y=[None], mode="lines", line=line, name=name)
    fig.update_xaxes(title_text="iteration", row=nrows)
    fig.update_layout(
        height=230 * nrows + 60,
        margin={"l": 40, "r": 10, "t": 70, "b": 40},
        legend={"orientation": "h", "y": 1.0, "yanchor": "top", "x": 0, "yref": "container"},
        font={"color": TEXT_COLOUR},
    )
    fig.update_annotations(font_size=12)
    return fig
