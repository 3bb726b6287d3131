"""Comparing whole pieces with Bach's: pooled histograms, distances, a classifier test.

A row of the whole-piece evaluation is a list of pieces' `piece_stats`. Its histograms
are pooled (counts added over pieces) and compared with Bach's pooled histograms of the
same mode, because the scale degrees of a minor piece are not those of a major one:

- ordered bins use the earth mover's (1-Wasserstein) distance, in the bins' own unit:
  semitones for melodic intervals, register and spacing; semitones around the circle of
  pitch classes for scale degrees (moving mass from the 7th degree to the tonic costs one
  semitone, not eleven); doublings of a note's length for durations;
- categories (chord qualities, cadences, repeated pitch or not) use total variation
  (half the L1 distance between the shares: 0 = the same, 1 = nothing in common).

A row's distance is the mean of its major and minor pieces' distances, weighted by how
many pieces each mode has. A classifier two-sample test looks at the pieces one by one:
if a classifier, shown one piece's features, cannot tell Bach's from the row's better
than chance (0.5) under cross-validation, the two are alike as far as it can see.
"""

from __future__ import annotations

import math

import numpy as np

from bachgan import piece_stats as P
from bachgan.voices import VOICE_NAMES

# Ordered histograms: feature -> (bin positions, circular period or None).
ORDERED = {
    "scale_degrees": (np.arange(12.0), 12.0),
    "intervals": (np.arange(-P.INTERVAL_LIMIT, P.INTERVAL_LIMIT + 1.0), None),
    "durations": (np.log2(np.array(P.DURATION_BINS, float)), None),
    "register": (np.arange(P.REGISTER[0], P.REGISTER[1] + 1.0), None),
}
SPACING_POSITIONS = np.arange(P.SPACING[0], P.SPACING[1] + 1.0)
VOICE_FEATURES = (*ORDERED, "repeats")
PIECE_FEATURES = ("spacing", "qualities", "cadences")
UNITS = {
    "scale_degrees": "semitones (circular EMD)",
    "intervals": "semitones (EMD)",
    "durations": "doublings of length (EMD)",
    "register": "semitones (EMD)",
    "repeats": "total variation (repeat or move)",
    "spacing": "semitones (EMD), mean of S-A, A-T, T-B",
    "qualities": "total variation",
    "cadences": "total variation",
}
POOLED = (
    "scale_degrees intervals durations register spacing qualities cadences "
    "local_authentic closed ends_on_tonic parallels"
).split()


# ---------------------------------------------------------------- distances


def _shares(h) -> np.ndarray | None:
    h = np.asarray(h, float)
    total = h.sum()
    return h / total if total > 0 else None


def emd(a, b, positions, period: float | None = None) -> float:
    """Earth mover's distance between two histograms (normalised here) on ordered bins at
    `positions`; with `period`, on a circle of that length (uniformly spaced bins).
    NaN when either histogram is empty."""
    p, q = _shares(a), _shares(b)
    if p is None or q is None:
        return math.nan
    diff = np.cumsum(p - q)
    if period is not None:
        # On a circle, the cheapest plan shifts every cumulative difference by its median.
        return float(np.abs(diff - np.median(diff)).sum() * period / len(p))
    return float((np.abs(diff[:-1]) * np.diff(positions)).sum())


def total_variation(a, b) -> float:
    """Half the L1 distance between two histograms' shares; NaN when either is empty."""
    p, q = _shares(a), _shares(b)
    return math.nan if p is None or q is None else float(0.5 * np.abs(p - q).sum())


def pool(stats: list[dict]) -> dict[str, np.ndarray]:
    """Counts added over pieces (the key fields are left out: they do not add)."""
    return {k: sum(np.asarray(s[k]) for s in stats) for k in POOLED} if stats else {}


def repeats(intervals_row) -> np.ndarray:
    """(repeated pitch, other move) counts of one voice's interval histogram."""
    row = np.asarray(intervals_row)
    same = row[P.INTERVAL_LIMIT]
    return np.array([same, row.sum() - same])


def feature_distances(a: dict, b: dict) -> dict[str, float]:
    """Every distance between two pooled histograms: '<feature>/<voice>' per voice,
    'spacing/<pair>' per adjacent pair, 'qualities' and 'cadences' for the piece."""
    out: dict[str, float] = {}
    for name, (positions, period) in ORDERED.items():
        for v, voice in enumerate(VOICE_NAMES):
            out[f"{name}/{voice}"] = emd(a[name][v], b[name][v], positions, period)
    for v, voice in enumerate(VOICE_NAMES):
        ra, rb = repeats(a["intervals"][v]), repeats(b["intervals"][v])
        out[f"repeats/{voice}"] = total_variation(ra, rb)
    for k, pair in enumerate(P.PAIR_NAMES):
        out[f"spacing/{pair}"] = emd(a["spacing"][k], b["spacing"][k], SPACING_POSITIONS)
    out["qualities"] = total_variation(a["qualities"], b["qualities"])
    out["cadences"] = total_variation(a["cadences"], b["cadences"])
    return out


def mode_of(stats: dict) -> str:
    return P.MODES[int(stats["given_key"][1])]


def distances(stats: list[dict], reference: dict[str, dict]) -> dict[str, float]:
    """Distances of a row's pieces to `reference` (mode -> pooled Bach), each mode's pieces
    against that mode's reference, then averaged weighted by pieces per mode."""
    parts, weights = [], []
    for mode in P.MODES:
        mine = [s for s in stats if mode_of(s) == mode]
        if mine:
            parts.append(feature_distances(pool(mine), reference[mode]))
            weights.append(len(mine))
    if not parts:
        return {}
    return {k: _weighted([p[k] for p in parts], weights) for k in parts[0]}


def _weighted(values, weights) -> float:
    ok = [(v, w) for v, w in zip(values, weights) if not math.isnan(v)]
    if not ok:
        return math.nan
    return float(sum(v * w for v, w in ok) / sum(w for _, w in ok))


def summary(dist: dict[str, float], given: int) -> dict[str, float]:
    """One figure per feature: per-voice ones averaged over the voices not given (the
    ones a harmonizer writes), spacing over its three pairs."""
    out = {}
    written = [VOICE_NAMES[v] for v in range(4) if v != given]
    for name in VOICE_FEATURES:
        out[name] = _mean([dist[f"{name}/{v}"] for v in written])
    out["spacing"] = _mean([dist[f"spacing/{p}"] for p in P.PAIR_NAMES])
    out["qualities"], out["cadences"] = dist["qualities"], dist["cadences"]
    return out


def _mean(values) -> float:
    ok = [v for v in values if not math.isnan(v)]
    return float(np.mean(ok)) if ok else math.nan


# ---------------------------------------------------------------- pooled figures


def _ratio(num, den) -> float:
    return float(num) / float(den) if den else math.nan


def figures(stats: list[dict]) -> dict[str, float]:
    """The headline figures of a row's pieces, pooled: bass repeated-pitch share, parallel
    5ths/8ves per 100 motions (and the share of pieces with any), cadence shares (of
    phrase ends: authentic or half in the piece's key, V-I in any key, 'closed' =
    either), share of pieces ending on the tonic; per voice the repeated-pitch share and
    the mean range of a piece in semitones."""
    if not stats:
        return {}
    s = pool(stats)
    cad = s["cadences"]
    ends = int(cad.sum())
    bass = repeats(s["intervals"][3])
    out = {
        "bass_repeats": _ratio(bass[0], bass.sum()),
        "parallels_per_100": 100 * _ratio(s["parallels"][:2].sum(), s["parallels"][2]),
        "pieces_with_parallels": float(np.mean([x["parallels"][:2].sum() > 0 for x in stats])),
        "phrase_ends": ends,
        "authentic_or_half": _ratio(cad[0] + cad[1], ends),
        "local_authentic": _ratio(s["local_authentic"], ends),
        "ends_on_tonic": _ratio(s["ends_on_tonic"], len(stats)),
    }
    out["closed"] = _ratio(s["closed"], ends)
    out.update({f"cadence/{c}": _ratio(cad[i], ends) for i, c in enumerate(P.CADENCES)})
    for v, voice in enumerate(VOICE_NAMES):
        rep = repeats(s["intervals"][v])
        out[f"repeat_share/{voice}"] = _ratio(rep[0], rep.sum())
        out[f"range/{voice}"] = _mean([_range(x["register"][v]) for x in stats])
    return out


def _range(register_row) -> float:
    """Semitones from a voice's lowest to its highest note in one piece (NaN if silent)."""
    used = np.flatnonzero(register_row)
    return float(used[-1] - used[0]) if len(used) else math.nan


def key_agreement(stats: list[dict], bach: list[dict]) -> dict[str, float]:
    """Share of pieces whose analysed mode (key) is that of Bach's harmonization of the
    same melody, analysed the same way; share ending on the tonic of those whose Bach's
    harmonization does."""
    if not stats:
        return {"mode_kept": math.nan, "key_kept": math.nan}
    mine = np.array([s["key"] for s in stats])
    his = np.array([b["key"] for b in bach])
    # Some chorales end on the dominant (a Phrygian close): where Bach's ends on the tonic
    his_tonic = np.array([bool(b["ends_on_tonic"]) for b in bach])
    mine_tonic = np.array([bool(s["ends_on_tonic"]) for s in stats])
    return {
        "mode_kept": float((mine[:, 1] == his[:, 1]).mean()),
        "key_kept": float((mine == his).all(axis=1).mean()),
        "tonic_where_bach": float(mine_tonic[his_tonic].mean()) if his_tonic.any() else math.nan,
    }


# ---------------------------------------------------------------- classifier test


def piece_vector(stats: dict, given: int) -> np.ndarray:
    """A piece's features for the classifier: the shares of each written voice's scale
    degrees, intervals and durations, its register (mean, lowest, highest pitch), the
    spacing of each pair (mean, spread), chord-quality and cadence shares, closes in any
    key, ending on the tonic, parallels per 100 motions, and whether the analysed key and
    mode are the given ones. The given voice is left out: both sides share it."""
    parts = []
    lo = P.REGISTER[0]
    for v in (v for v in range(4) if v != given):
        for name in ("scale_degrees", "intervals", "durations"):
            parts.append(_shares(stats[name][v]) if stats[name][v].sum() else stats[name][v] * 0)
        reg = np.asarray(stats["register"][v], float)
        used = np.flatnonzero(reg)
        if len(used):
            mean = (reg * np.arange(lo, lo + len(reg))).sum() / reg.sum()
            parts.append(np.array([mean, lo + used[0], lo + used[-1]]))
        else:
            parts.append(np.zeros(3))
    for row in stats["spacing"]:
        share = _shares(row)
        if share is None:
            parts.append(np.zeros(2))
        else:
            mean = (share * SPACING_POSITIONS).sum()
            parts.append(np.array([mean, np.sqrt((share * (SPACING_POSITIONS - mean) ** 2).sum())]))
    ends = stats["cadences"].sum()
    par = stats["parallels"]
    parts += [
        _shares(stats["qualities"]) if stats["qualities"].sum() else np.zeros(len(P.QUALITIES)),
        stats["cadences"] / ends if ends else np.zeros(len(P.CADENCES)),
        np.array([stats["local_authentic"] / ends if ends else 0.0]),
        np.array([float(stats["ends_on_tonic"]), 100 * par[:2].sum() / max(par[2], 1)]),
        np.array([float(stats["key"][1] == stats["given_key"][1])]),
        np.array([float((stats["key"] == stats["given_key"]).all())]),
    ]
    return np.concatenate([np.asarray(p, float).ravel() for p in parts])


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% for z=1.96)."""
    if n == 0:
        return math.nan, math.nan
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _classifier(kind: str, seed: int):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    if kind == "boosting":
        return GradientBoostingClassifier(n_estimators=100, max_depth=2, random_state=seed)
    raise ValueError(f"unknown classifier {kind!r}")


def two_sample_test(a, b, groups=None, kind="logistic", folds=5, seed=0, repeats=5) -> dict:
    """Cross-validated accuracy of a classifier telling sample `a` (rows of features) from
    sample `b`: each piece is predicted by a model that never saw it, and the k-fold
    split is repeated `repeats` times with other shuffles and averaged (one split of a few
    dozen pieces moves the accuracy by several points). `groups` keeps pieces together
    across folds (a melody's two harmonizations: neither is judged by a model that saw
    the other). The 95% Wilson interval counts each piece once (the repeats are not
    independent samples). 0.5 is chance: the classifier cannot tell the two apart."""
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    a, b = np.asarray(a, float), np.asarray(b, float)
    x = np.vstack([a, b])
    y = np.r_[np.zeros(len(a), int), np.ones(len(b), int)]
    g = np.arange(len(x)) if groups is None else np.asarray(groups)
    k = min(folds, len(a), len(b))
    if k < 2:
        return {"accuracy": math.nan, "low": math.nan, "high": math.nan, "n": int(len(x))}
    scores = []
    for r in range(repeats):
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed + r)
        pred = cross_val_predict(_classifier(kind, seed + r), x, y, groups=g, cv=cv)
        scores.append(float((pred == y).mean()))
    accuracy = float(np.mean(scores))
    low, high = wilson(round(accuracy * len(y)), len(y))
    return {
        "accuracy": accuracy,
        "low": low,
        "high": high,
        "n": int(len(y)),
        "repeats": repeats,
        "sd_over_repeats": float(np.std(scores)),
    }


def classify(bach: list[dict], row: list[dict], given: int, paired: bool, seed=0, repeats=5):
    """Both classifiers on piece vectors; `paired` when bach[i] and row[i] share a melody."""
    a = np.stack([piece_vector(s, given) for s in bach])
    b = np.stack([piece_vector(s, given) for s in row])
    n = len(a)
    groups = np.r_[np.arange(n), np.arange(len(b))] if paired else None
    return {
        k: two_sample_test(a, b, groups, k, seed=seed, repeats=repeats)
        for k in ("logistic", "boosting")
    }
