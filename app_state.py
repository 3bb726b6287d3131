"""Streamlit-side helpers shared by the pages: cached model, Bach's figures, audio, state.

It sits beside streamlit_app.py, not in bachgan/: the library never imports streamlit.
This module holds caching and session state only; music and ML stay in the library.

- The model is loaded once per process and model choice (`st.cache_resource`).
- Bach's reference figures are computed in a background thread, so no page waits for the
  corpus to be parsed the first time; pages show "…" until they are ready.
- Widget values are copied to shadow keys so they survive a visit to another page
  (Streamlit forgets the state of widgets that a run did not draw).
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from pathlib import Path

import streamlit as st

from bachgan.runs import SHIPPED  # the model choice that names the shipped model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The app takes a GPU's memory as it needs it, leaving the rest to a training process.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

DEMO_TUNE = "Ode to Joy (Beethoven)"  # the home page's one-click demo, on Harmonize
_KEEP = "_keep_"
HERE = Path(__file__).resolve().parent

# (file, title in the menu, icon, link text on the home page, what the page is for)
_PAGES = [
    (
        "pages/1_Harmonize.py",
        "Harmonize",
        "🎼",
        "Harmonize your own melody",
        "A tune, a MIDI file, typed notes or a voice of a Bach chorale: hear, see, download.",
    ),
    (
        "pages/2_Train.py",
        "Train",
        "🏋️",
        "Train a model",
        "Train your own model in the background and watch it learn.",
    ),
    (
        "pages/3_Explore_latent.py",
        "Explore variations",
        "🧭",
        "Explore variations",
        "Walk between harmonizations of one melody and keep your favourites.",
    ),
]
PAGES = [p for p in _PAGES if (HERE / p[0]).exists()]  # those this checkout has
NAV_PAGES: list = []  # the st.Page objects, once streamlit_app.py has run in this process


# ---------------------------------------------------------------- the menu


def menu() -> None:
    """Page links in the sidebar, until Streamlit's own menu is there.

    Once streamlit_app.py has run in this process, st.navigation draws the menu (at the
    top; in the sidebar on a phone, closing it when a page is tapped) and this draws
    nothing. Until then a server is in Streamlit's older pages/ folder mode, whose own menu
    is off (.streamlit/config.toml) as it would call the home page "streamlit app" on a
    first visit straight to a deep link (/Harmonize): this draws the links instead."""
    from streamlit.errors import StreamlitAPIException

    if NAV_PAGES:
        return
    links = [("streamlit_app.py", "Home", "🏠")]
    links += [(f, title, icon) for f, title, icon, *_ in PAGES]
    with st.sidebar:
        for page, title, icon in links:
            try:
                st.page_link(page, label=title, icon=icon)
            except StreamlitAPIException:  # a page run on its own (AppTest): no menu
                return


# ---------------------------------------------------------------- models


@st.cache_resource(max_entries=3, show_spinner="Loading the model (a few seconds, once)…")
def _load_harmonizer(path: str, stamp: float):
    from bachgan.sampling import Harmonizer

    h = Harmonizer(path)
    h.version = (path, stamp)  # a re-exported model (a resumed run) is loaded again
    _warm_up(h)
    return h


def _warm_up(h) -> None:
    """Trace the generator for one and for several windows now, and have FluidSynth read
    its soundfont once (into the page cache), so that the first click is as fast as any."""
    import numpy as np

    from bachgan.audio import PREVIEW_RATE, render_wav
    from bachgan.midi import to_midi_bytes
    from bachgan.voices import Voices

    for bars in (2, 3):
        melody = Voices.from_pitches(np.full(bars * 16, 67, np.int16))
        voice = h.preset.condition_voices[0]
        try:
            result = h.harmonize(melody, voice, seed=0)
        except Exception:  # a model that cannot take this melody still loads
            return
    render_wav(to_midi_bytes(result.voices), PREVIEW_RATE, mono=True)


def harmonizer(choice: str = SHIPPED):
    """The loaded model for a choice, shared by all sessions of this server process."""
    from bachgan.export import CARD, resolve_export
    from bachgan.runs import resolve_model

    folder = resolve_export(resolve_model(choice))
    return _load_harmonizer(str(folder), (folder / CARD).stat().st_mtime)


def model_name(choice: str) -> str:
    """How the pages name a model choice in a sentence."""
    return "the shipped model" if choice == SHIPPED else f"the model of run '{choice}'"


def load_model(choice: str = SHIPPED):
    """`harmonizer(choice)`, or None after telling the person why it could not be loaded."""
    try:
        return harmonizer(choice)
    except Exception as e:  # a damaged or half-written run must not take the page down
        st.error(f"Could not load {model_name(choice)}: {e}. Choose another model.")
        return None


def model_label(h) -> str:
    card = h.card
    it = card.get("iteration")
    parts = [f"run '{card['run']}'" if card.get("run") else None, f"preset '{h.preset.name}'"]
    parts.append(f"{it:,} training iterations" if it else None)
    return ", ".join(p for p in parts if p)


@st.cache_resource(max_entries=3, show_spinner="Checking the model on the built-in tunes…")
def _tune_quality(path: str, stamp: float) -> dict:
    from bachgan.evaluate import tune_windows
    from bachgan.melody import BUILTIN_TUNES, builtin_tune
    from bachgan.metrics import batch_metrics

    h = _load_harmonizer(path, stamp)
    windows = []
    for tune in BUILTIN_TUNES:
        for seed in range(3):
            windows += tune_windows(h.harmonize(builtin_tune(tune), 0, seed=seed).voices)
    return batch_metrics(windows, voices=(1, 2, 3))


def model_quality(choice: str = SHIPPED) -> tuple[dict, str]:
    """(headline metrics, where they come from): the model card's evaluation when it has
    one, else a quick check on the built-in tunes (soprano given, three seeds each)."""
    h = harmonizer(choice)
    card = h.card
    stored = card.get("evaluation", {}).get("rows", {}).get("model/all")
    if isinstance(stored, dict) and stored:
        return stored, "from the model's evaluation on held-out chorales and tunes"
    m = _tune_quality(*h.version)  # the same (folder, time) the model was loaded by
    return m, "a quick check: the five built-in tunes as soprano, three seeds each"


def model_picker(key: str) -> str:
    """Choose the model; the choice is shared between pages."""
    from bachgan.runs import model_choices

    options = model_choices()
    current = st.session_state.get("model_choice", SHIPPED)
    if current not in options:  # deleted, or training again since it was chosen
        st.warning(
            f"The model of run '{current}' is no longer available (the run was deleted or is "
            "training again), so the shipped model is used."
        )
        st.session_state.pop(key, None)
        current = SHIPPED
    choice = st.selectbox(
        "Model",
        options,
        index=options.index(current) if current in options else 0,
        key=key,
        format_func=lambda c: "the shipped model" if c == SHIPPED else f"training run '{c}'",
        help="The shipped model, or a training run from the Train page that has finished or "
        "was stopped (its newest saved generator is used).",
    )
    st.session_state["model_choice"] = choice
    return choice


# ---------------------------------------------------------------- Bach's figures


class _Background:
    """A value computed once, in a daemon thread (the server never waits on it to exit)
    unless `inline` says it is at hand already."""

    def __init__(self, fn, inline: bool = False):
        self.value, self.error = None, None
        self._done = threading.Event()

        def run():
            try:
                self.value = fn()
            except Exception as e:  # shown to the user as "not available", never raised
                self.error = e
            self._done.set()

        if inline:
            run()
        else:
            threading.Thread(target=run, daemon=True, name="bachgan-reference").start()

    def ready(self) -> bool:
        return self._done.is_set()


def _shipped_references() -> dict[int, dict] | None:
    """Bach's figures per given voice as the shipped model's evaluation measured them (the
    same test chorales and metrics), so a fresh server needs no corpus parse to show them."""
    from bachgan.runs_io import read_json
    from bachgan.sampling import default_checkpoint
    from bachgan.voices import VOICE_NAMES

    evaluation = read_json(Path(default_checkpoint()) / "evaluation.json", {})
    rows = evaluation.get("rows", {}) if isinstance(evaluation, dict) else {}
    refs = {v: rows.get(f"bach/{name}") for v, name in enumerate(VOICE_NAMES)}
    return refs if all(isinstance(r, dict) and r for r in refs.values()) else None


def _all_references() -> dict[int, dict]:
    from bachgan.evaluate import bach_reference

    return {v: bach_reference(tuple(x for x in range(4) if x != v)) for v in range(4)}


_job: _Background | None = None  # one per server process, like st.cache_resource
_job_lock = threading.Lock()


def _reference_job(start: bool = True) -> _Background | None:
    """Bach's figures: read from the shipped evaluation, or else computed in the background
    (started on first need only)."""
    global _job
    with _job_lock:
        if _job is None:
            try:
                shipped = _shipped_references()
            except Exception:  # a damaged evaluation.json: compute them instead
                shipped = None
            if shipped is not None:
                _job = _Background(lambda: shipped, inline=True)
            elif start:
                _job = _Background(_all_references)
        return _job


def corpus_cached() -> bool:
    """True when Bach's chorales are already parsed on disk (then loading them is quick)."""
    try:
        from bachgan.data import cache_path

        return cache_path().exists()
    except Exception:
        return False


def bach_reference(given_voice: int = 0, start: bool = True) -> dict | None:
    """Bach's figures for the three voices other than `given_voice`, or None while pending.

    With `start=False` the computation is started only when the chorales are already parsed
    on disk (quick), so the home page never triggers the minute-long first parse.
    """
    job = _reference_job(start=start or corpus_cached())
    if job is None or not job.ready() or job.value is None:
        return None
    return job.value.get(given_voice)


def reference_problem() -> str | None:
    """Why Bach's figures are missing, when they failed (not while still computing)."""
    job = _reference_job(start=False)
    if job is not None and job.ready() and job.error is not None:
        return f"Bach's figures are not available ({type(job.error).__name__}: {job.error})"
    return None


def metrics_view(m: dict, voice: int = 0, column: str = "this result", start: bool = True):
    """The headline metrics beside Bach's; while his are computed, re-check every 3 s."""
    from bachgan.describe import METRIC_WORDS
    from bachgan.metrics import HEADLINE
    from bachgan.plots import metrics_table

    plain = {label: METRIC_WORDS.get(key, label) for key, label in HEADLINE}

    def draw() -> dict | None:
        ref = bach_reference(voice, start=start)
        rows = [r | {"metric": plain[r["metric"]]} for r in metrics_table(m, ref, column)]
        st.table(rows)  # a static table wraps to fit a phone
        st.caption(
            "The rows as the evaluation names them: "
            + "; ".join(f"*{plain[label]}*: {label}" for _, label in HEADLINE)
            + "."
        )
        if ref is None and _reference_job(start=False) is None:
            st.caption("Bach's figures appear once the Harmonize page has loaded his chorales.")
        elif ref is None:
            st.caption(
                reference_problem()
                or "Bach's figures are being computed (about a minute the first time)…"
            )
        return ref

    @st.fragment(run_every=3)
    def poll():
        if draw() is not None or reference_problem():
            st.rerun(scope="app")  # a full run draws the final table and stops the polling

    if bach_reference(voice, start=start) is None and _reference_job(start=False):
        if not reference_problem():
            poll()
            return
    draw()


# ---------------------------------------------------------------- data and audio


@st.cache_resource(show_spinner="Loading Bach's chorales (about a minute the first time)…")
def test_chorales() -> list:
    """The held-out chorales (never seen in training), parsed once per process."""
    from bachgan.data import load_corpus

    return load_corpus().chorales("test")


@st.cache_data(max_entries=16, show_spinner=False)
def upload_tracks(data: bytes) -> list[str]:
    """The track names of an uploaded MIDI file, read once per file."""
    from bachgan.melody import midi_tracks

    return midi_tracks(data)


@st.cache_data(max_entries=16, show_spinner=False)
def upload_melody(data: bytes, voice_name: str, track: int | None):
    """(melody, import report) of an uploaded MIDI file, read once per file and choice.
    A MelodyError is not cached: it is raised again, with its message, on every rerun."""
    from bachgan.melody import melody_from_midi

    return melody_from_midi(data, voice_name, track=track)


# The player's bounds on a shared server: a piece longer than this is not rendered for the
# browser (64 bars at 20 BPM would be 13 minutes, 34 MB), and only WAVs up to CACHED_WAV_BYTES
# (about 3 minutes of preview) are kept in the cache, which all sessions share.
MAX_PLAYER_SECONDS = 8 * 60
CACHED_WAV_BYTES = 8_000_000


@st.cache_data(max_entries=32, show_spinner=False)
def render_audio(midi: bytes, preview: bool = True) -> tuple[bytes, bool, str]:
    """(wav, is_fallback, synthesizer) for MIDI bytes; cached, so replays are free. The
    preview the player gets is mono at 22.05 kHz: about twice as quick to render as full
    quality (44.1 kHz stereo, for downloads) and a quarter of the bytes to send."""
    from bachgan.audio import PREVIEW_RATE, render_wav

    a = render_wav(midi, PREVIEW_RATE, mono=True) if preview else render_wav(midi)
    return a.wav, a.is_fallback, a.synthesizer


@st.cache_data(max_entries=32, show_spinner=False)
def score_svg(voices, tempo: float) -> list[str]:
    """Sheet music of a result, one SVG per page; cached, as music21 takes about 0.4 s to
    write the MusicXML of ten bars."""
    from bachgan.midi import to_score_svg

    return to_score_svg(voices, tempo)


def _rendered(midi: bytes, preview: bool) -> tuple[bytes, bool, str]:
    """`render_audio`, except that a fallback sound is not kept (FluidSynth may work on the
    next try, and a cached fallback would play for every session until evicted), nor a long
    piece's WAV (a few would fill the server's memory)."""
    out = render_audio(midi, preview)
    if out[1] or len(out[0]) > CACHED_WAV_BYTES:
        render_audio.clear(midi, preview)
    return out


def full_quality_wav(midi: bytes) -> bytes:
    """The WAV to download: 44.1 kHz stereo (rendered when asked for)."""
    return _rendered(midi, False)[0]


@st.cache_data(max_entries=256, show_spinner=False)
def _seconds(midi: bytes) -> float:
    """How long a MIDI file plays, read once per file rather than on every rerun of each
    player (parsing ten bars takes a few milliseconds; the lookup, a few microseconds)."""
    from bachgan.midi import duration_s

    return duration_s(midi)


def audio_player(midi: bytes) -> None:
    """st.audio of the rendered MIDI, with a note when the fallback synthesizer was used;
    a piece longer than MAX_PLAYER_SECONDS gets a note instead of a player."""
    seconds = _seconds(midi)
    if seconds > MAX_PLAYER_SECONDS:
        st.info(
            f"🔈 This piece lasts {seconds / 60:.0f} minutes, longer than the "
            f"{MAX_PLAYER_SECONDS // 60} minutes the player here plays. Choose fewer bars or "
            "a faster tempo to listen here, or download the MIDI file."
        )
        return
    wav, fallback, synth = _rendered(midi, True)
    st.audio(wav, format="audio/wav")
    if fallback:
        st.caption(
            f"🔈 Simple sine-wave sound: the real instrument sounds are unavailable here "
            f"({synth.removeprefix('fallback: ')}). The MIDI download sounds right."
        )


# ---------------------------------------------------------------- state


def restore(keys: list[str]) -> None:
    """Put back widget values saved by `save` (call before drawing the widgets)."""
    for k in keys:
        if k not in st.session_state and _KEEP + k in st.session_state:
            st.session_state[k] = st.session_state[_KEEP + k]


def save(keys: list[str]) -> None:
    """Remember widget values so the page looks the same after visiting another page."""
    for k in keys:
        if k in st.session_state:
            st.session_state[_KEEP + k] = st.session_state[k]


def favourites() -> list[dict]:
    return st.session_state.setdefault("favourites", [])


def favourites_zip(favs: list[dict]) -> bytes:
    """A zip with one MIDI file per favourite and favourites.json (seeds and latents)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        index = []
        for i, f in enumerate(favs, 1):
            name = f"{i:02d}-{slug(f['label'])}.mid"
            z.writestr(name, f["midi"])
            index.append({"file": name} | {k: v for k, v in f.items() if k != "midi"})
        z.writestr("favourites.json", json.dumps(index, indent=1))
    return buf.getvalue()


def slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in keep.split("-") if p)[:60] or "chorale"
