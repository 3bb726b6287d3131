"""Markdown tables of a whole-piece evaluation (`bachgan.whole_eval.evaluate_whole`)."""

from __future__ import annotations

from bachgan.context import key_text

SUMMARY_LABELS = {
    "scale_degrees": "scale degrees",
    "intervals": "intervals",
    "durations": "durations",
    "repeats": "repeats",
    "register": "register",
    "spacing": "spacing",
    "qualities": "chord quality",
    "cadences": "cadences",
}


def _num(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _acc(c: dict | None) -> str:
    if not c or c.get("accuracy") is None:
        return "n/a"
    return f"{c['accuracy']:.2f} [{c['low']:.2f}, {c['high']:.2f}]"


def _headline(rows: dict) -> str:
    head = ["row", "pieces", "mode kept", "key kept", *SUMMARY_LABELS.values()]
    head += ["bass repeats", "parallels /100", "pieces with parallels"]
    head += ["authentic+half", "V-I in any key", "closed"]
    head += ["ends on tonic", "classifier LR [95% CI]", "classifier GB [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cls = r.get("classifier") or {}
        cells = [name, str(r["pieces"]), _pct(r["mode_kept"]), _pct(r["key_kept"])]
        cells += [_num(r["summary"].get(k)) for k in SUMMARY_LABELS]
        cells += [_pct(r.get("bass_repeats")), _num(r.get("parallels_per_100"), 2)]
        cells.append(_pct(r.get("pieces_with_parallels")))
        cells += [_pct(r.get("authentic_or_half")), _pct(r.get("local_authentic"))]
        cells.append(_pct(r.get("closed")))
        cells += [
            _pct(r.get("ends_on_tonic")),
            _acc(cls.get("logistic")),
            _acc(cls.get("boosting")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _per_voice(rows: dict) -> str:
    names = list(rows)
    keys = list(next(iter(rows.values()))["distances"])
    lines = ["| distance | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for k in keys:
        cells = [_num(rows[n]["distances"].get(k)) for n in names]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _tunes(tunes: dict) -> str:
    head = ["row", "tune", "tune key", "result key", "ends on tonic", "bass repeats", "par. /100"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, per_tune in tunes.items():
        for name, t in per_tune.items():
            if "skipped" in t:
                lines.append(f"| {row} | {name} | skipped: {t['skipped']} |" + " |" * 4)
                continue
            cells = [row, name, key_text(*t["tune_key"]), key_text(*t["result_key"])]
            cells += ["yes" if t["ends_on_tonic"] else "no", _pct(t["bass_repeats"])]
            cells.append(_num(t["parallels_per_100"], 2))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _legend(result: dict, voice: str) -> str:
    units = "; ".join(f"{SUMMARY_LABELS[k]}: {u}" for k, u in result["distance_units"].items())
    draws = result["by_voice"][voice]["rows"].get("Bach vs Bach", {}).get("draws")
    return (
        "Distances to Bach's training chorales of the same mode, per-voice ones averaged over"
        f" the three voices not given ({units}). Bach vs Bach: as many training chorales"
        f" against the other training chorales, mean of {draws} draws. Cadence shares are of"
        " the phrase ends (fermatas); 'closed' = authentic or half in the piece's key, or V-I"
        " in any key. Classifier: accuracy telling the row from Bach's harmonizations of the"
        " same melodies, cross-validated (0.5 = indistinguishable; the Bach row compares Bach"
        " with itself, 0.5 by construction; Bach vs Bach compares different chorales)."
    )


def tables(result: dict) -> str:
    """Markdown: per given voice, the headline table (a row per row), the distances per
    voice and pair, and the built-in tunes."""
    out = []
    for voice, section in result["by_voice"].items():
        rows = section["rows"]
        n = len(result["chorales"])
        out.append(f"### {voice} given: {n} {result['split']} chorales, whole")
        out += ["", _legend(result, voice), ""]
        out += [_headline(rows), "", _per_voice(rows), ""]
        if result["tunes"].get(voice):
            out += [f"#### Built-in tunes, {voice} given", "", _tunes(result["tunes"][voice]), ""]
    return "\n".join(out)
