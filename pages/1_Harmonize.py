"""Harmonize: a melody in, four voices out - pianoroll, audio, downloads and metrics."""

from __future__ import annotations

import random

import numpy as np
import streamlit as st

import app_state as app
import upload_view
from bachgan.context import estimate as estimate_context
from bachgan.context import key_text, with_key
from bachgan.data import chorale_title
from bachgan.describe import describe
from bachgan.melody import (
    BUILTIN_TUNES,
    LIMITS,
    ImportReport,
    MelodyError,
    melody_from_text,
    notation_help,
)
from bachgan.midi import DEFAULT_PROGRAM, PROGRAMS, to_midi_bytes, to_musicxml
from bachgan.plots import CHART_CONFIG, pianoroll_figure
from bachgan.presets import MAX_SEED
from bachgan.sampling import reroll_bar, truncate
from bachgan.voices import STEPS_PER_BAR, VOICE_NAMES

SOURCES = {
    "tune": "Built-in tune",
    "upload": "Upload a MIDI file",
    "text": "Type the notes",
    "bach": "A voice of a Bach chorale",
}
INSTRUMENTS = list(PROGRAMS)
DEFAULT_INSTRUMENT = next(k for k, v in PROGRAMS.items() if v == DEFAULT_PROGRAM)
DEFAULTS = {
    "h_source": "tune",
    "h_tune": app.DEMO_TUNE,
    "h_text": BUILTIN_TUNES["Twinkle, Twinkle, Little Star"],
    "h_voice": 0,
    "h_seed": 0,
    "h_trunc": 1.0,
    "h_tempo": 80,
    **{f"h_inst_{v}": DEFAULT_INSTRUMENT for v in range(4)},
}
KEPT = [*DEFAULTS, "h_chorale", "h_view", "h_key", "h_key_for"]

st.set_page_config(page_title="Harmonize · BachGAN", page_icon="🎼", layout="wide")
app.menu()
app.restore(KEPT)
if st.session_state.pop("demo", False):  # the home page's one-click button: the shipped model
    st.session_state.update(h_source="tune", h_tune=app.DEMO_TUNE, h_voice=0, h_seed=0, h_trunc=1.0)
    st.session_state.update(model_choice=app.SHIPPED, h_model=app.SHIPPED)
    st.session_state.h_active = True
for k, v in DEFAULTS.items():
    st.session_state.setdefault(k, v)


def new_variation():
    st.session_state.h_seed = random.randrange(1_000_000)
    st.session_state.h_active = True


def key_name(key: str) -> str:
    """A key as people write it: music21's 'E- major' and 'f# minor' -> 'E♭ major', 'F♯ minor'."""
    tonic, _, mode = key.partition(" ")
    if not tonic:
        return key
    tonic = tonic[0].upper() + tonic[1:].replace("-", "♭").replace("#", "♯")
    return f"{tonic} {mode}".strip()


def bwv_order(name: str) -> tuple:
    """Chorales in BWV order: 'bwv4.8' before 'bwv25.6' before 'bwv102.7'."""
    parts = name.removeprefix("bwv").split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def melody_input(voice: int):
    """Draw the controls of the chosen source -> (melody, ImportReport, label, Bach's original
    or None), or None while there is no melody yet."""
    name = VOICE_NAMES[voice]
    source = st.session_state.h_source
    if source != "upload" and st.session_state.pop("h_tempo_of", None) is not None:
        before = st.session_state.pop("h_tempo_before", DEFAULTS["h_tempo"])
        if st.session_state.h_tempo == st.session_state.pop("h_tempo_file", None):
            st.session_state.h_tempo = before  # the file's tempo goes with it
    # persist_state="session" on the source's boxes: one drawn again after another source
    # shows the value in use (else the browser shows its first option and sends that back).
    if source == "tune":
        tune = st.selectbox(
            "Tune",
            list(BUILTIN_TUNES),
            key="h_tune",
            persist_state="session",
            help="Well-known melodies. Bach harmonized 'Ein feste Burg' himself (BWV 80, 302 "
            "and 303), and the model trained on some of those settings; the others are not "
            "among his chorales.",
        )
        melody, report = melody_from_text(BUILTIN_TUNES[tune], name)
        return melody, report, tune, None, None
    if source == "upload":
        st.caption(upload_view.limits_caption())
        # No type filter: the box would refuse another file with its reason in a tooltip only;
        # the library reads the content and says what is wrong with it.
        file = st.file_uploader(
            "MIDI file",
            key="h_upload",
            max_upload_size=upload_view.UPLOADER_MB,  # the library's limit, stated by the box
            help="A .mid file with your melody, e.g. exported from MuseScore. If it has several "
            "notes at once, the highest one is taken.",
        )
        if file is not None:  # kept, because the uploader forgets its file on other pages
            st.session_state.h_upload_kept = (file.name, file.file_id, file.getvalue())
        elif not st.session_state.get("h_upload_kept"):
            st.info("Choose a MIDI file to harmonize.")
            return None
        file_name, file_id, data = st.session_state.h_upload_kept
        try:
            tracks = app.upload_tracks(data)
        except MelodyError as e:
            raise MelodyError(upload_view.refused(file_name, len(data), str(e))) from None
        st.caption(upload_view.in_use(file_name, len(data), earlier=file is None))
        track = None
        if len(tracks) > 1:
            options = [None, *range(len(tracks))]
            track = st.selectbox(
                "Track",
                options,
                key=f"h_track_{file_id}",
                persist_state="session",
                format_func=lambda i: "the melody (BachGAN's guess)" if i is None else tracks[i],
                help="Which track of the file holds the melody.",
            )
        try:
            melody, report = app.upload_melody(data, name, track)
        except MelodyError as e:
            if track is not None:  # another track may do: the message says so
                raise
            raise MelodyError(upload_view.refused(file_name, len(data), str(e))) from None
        if report.tempo and st.session_state.get("h_tempo_of") != file_id:
            if st.session_state.get("h_tempo_of") is None:  # the listener's, back after it
                st.session_state.h_tempo_before = st.session_state.h_tempo
            st.session_state.h_tempo_of = file_id  # a new file plays at its own tempo
            st.session_state.h_tempo = st.session_state.h_tempo_file = round(report.tempo)
        return melody, report, file_name, None, None
    if source == "text":
        text = st.text_area(
            "Notes",
            key="h_text",
            persist_state="session",
            height=110,
            max_chars=LIMITS["max_text_chars"],
            help="Note name, octave, duration: C4q is a quarter-note middle C. "
            "See 'How to type notes' below.",
        )
        with st.expander("How to type notes"):
            st.markdown(notation_help())
        melody, report = melody_from_text(text, name)
        return melody, report, "your melody", None, report.phrase_ends  # typed fermatas
    chorales = app.test_chorales()
    by_name = {c.name: c for c in sorted(chorales, key=lambda c: bwv_order(c.name))}
    chosen = st.selectbox(
        "Chorale",
        list(by_name),
        key="h_chorale",
        persist_state="session",
        format_func=lambda n: (
            f"{chorale_title(n)} ({key_name(by_name[n].key)})"
            if by_name[n].key
            else chorale_title(n)
        ),
        help="Chorales held out from training: the model has never seen them. The voice "
        "chosen on the right is taken as the melody; compare the result with Bach's own.",
    )
    steps = min(by_name[chosen].voices.steps, LIMITS["max_bars"] * STEPS_PER_BAR)
    bach = by_name[chosen].voices.slice(0, steps)
    title = chorale_title(chosen)
    report = ImportReport([f"took the {name} of {title}"])
    ends = by_name[chosen].fermatas[:steps]  # the hymn's phrase ends, as its melody marks them
    return bach.voice(voice), report, f"{title} ({name})", bach, ends


KEYS = [(t, m) for m in ("major", "minor") for t in range(12)]


def key_choice(melody, voice: int) -> tuple[int, str] | None:
    """The key the person chose for the harmony, or None: the one read off the melody (sung
    by `voice`). A new melody starts from the key read off it."""
    read = estimate_context(melody, voice=voice).key
    if st.session_state.get("h_key_for") != melody.digest():
        st.session_state.h_key, st.session_state.h_key_for = "auto", melody.digest()
    chosen = st.selectbox(
        "Key",
        ["auto", *(f"{t} {m}" for t, m in KEYS)],
        key="h_key",
        format_func=lambda k: (
            f"{key_text(*read)} (read off the melody)"
            if k == "auto"
            else key_text(int(k.split()[0]), k.split()[1])
        ),
        help="The key the harmony is written in. BachGAN reads it off the melody (its notes, "
        "and how its last note ends the tune); choose another if it guessed wrong, e.g. a tune "
        "in a minor key read as major.",
    )
    return None if chosen == "auto" else (int(chosen.split()[0]), chosen.split()[1])


def harmonize(
    choice: str, melody, voice: int, seed: int, truncation: float, ends=None, chosen_key=None
):
    """The result for these inputs, reused while they stay the same. `ends`: the melody's
    phrase ends where it marks them (a chorale's fermatas), else guessed from it;
    `chosen_key`: (tonic, mode) the person chose, else the key read off the melody."""
    h = app.load_model(choice)  # cached; its version changes when a run saves a newer model
    if h is None:
        return None
    context = estimate_context(melody, phrase_ends=ends, voice=voice)
    if chosen_key is not None:
        context = with_key(context, *chosen_key)
    marked = None if ends is None else np.asarray(ends, bool).tobytes()
    inputs = (h.version, melody.digest(), voice, seed, truncation, context.key, marked)
    bars = rerolls(inputs)
    key = (*inputs, len(bars["zs"]))
    kept = st.session_state.get("h_result")
    if kept and kept["key"] == key:
        return kept["result"]
    # The variation shown before, when it harmonized the same melody the same way: the
    # description says what changed from it.
    same_tune = kept and kept["key"][:3] == key[:3] and kept["key"][5:7] == key[5:7]
    previous = kept["result"].voices if same_tune else None
    with st.spinner("Harmonizing…"):
        if bars["zs"]:  # the seed's latents with some bars re-rolled (already scaled)
            result = h.harmonize(melody, voice, z=bars["zs"][-1], seed=seed, context=context)
        else:
            result = h.harmonize(melody, voice, seed=seed, truncation=truncation, context=context)
    st.session_state.h_result = {
        "key": key,
        "result": result,
        "preset": h.preset,
        "previous": previous,
    }
    return result


def rerolls(inputs: tuple) -> dict:
    """The bars re-rolled on the result of these inputs: the latents after each re-roll
    ('zs', newest last) and what each did ('history'). New inputs start with none."""
    kept = st.session_state.get("h_rerolls")
    if not kept or kept["for"] != inputs:
        kept = st.session_state.h_rerolls = {"for": inputs, "zs": [], "history": []}
    return kept


def reroll(bar: int, truncation: float):
    """A new random latent for one bar of the result on view; the rest stays as it is."""
    kept, shown = st.session_state.h_rerolls, st.session_state.h_result
    new_seed = random.randrange(1_000_000)
    z = reroll_bar(shown["result"].z, bar, new_seed, shown["preset"])
    z[bar] = truncate(z[bar], truncation)  # as adventurous as the rest
    kept["zs"].append(z)
    kept["history"].append(f"bar {bar + 1} ← seed {new_seed}")


def undo():
    kept = st.session_state.h_rerolls
    kept["zs"].pop()
    kept["history"].pop()


def reroll_controls(result, truncation: float):
    """Re-roll one bar and keep the rest, or undo the last re-roll."""
    kept = st.session_state.h_rerolls
    n_bars = len(result.z)
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    bar = c1.selectbox(
        "Change one bar",
        range(n_bars),
        format_func=lambda b: f"Bar {b + 1}",
        key="h_bar",
        help="Like most of it but not one bar? Give that bar a new random variation; the "
        "other bars keep theirs (bars next to it may adjust a little to join smoothly).",
    )
    c2.button(
        f"🎲 New variation of bar {bar + 1}",
        on_click=reroll,
        args=(bar, truncation),
        key="h_reroll",
        width="stretch",
    )
    c3.button(
        "↶ Undo",
        on_click=undo,
        key="h_undo",
        disabled=not kept["history"],
        help="Take back the last bar change.",
        width="stretch",
    )
    if kept["history"]:
        st.caption("Bars changed: " + "; ".join(kept["history"]) + ".")


def cleanup_caption(c: dict) -> str:
    return (
        f"Clean-up: the network's raw output became one clear line per voice, with "
        f"{c['changed_share']:.0%} of its notes changed. (Raw, a voice held several pitches at "
        f"once on {c['raw_multi_pitch_share']:.0%} of the steps and was silent on "
        f"{c['raw_silent_share']:.0%}.)"
    )


def musicians_view(result, previous) -> None:
    """The result in musical words: key, cadences, ranges, what changed (bachgan.describe)."""
    ctx = result.context
    sentences = describe(
        result.voices,
        result.voice,
        ctx.key if ctx is not None else None,
        ctx.phrase_ends if ctx is not None else None,
        previous,
        bar_steps=ctx.bar_steps if ctx is not None else STEPS_PER_BAR,
    )
    st.markdown("\n".join(f"- {s}" for s in sentences))


def result_metrics(voices, voice: int) -> dict:
    """Metrics of the three generated voices, on 2-bar windows as Bach's are measured."""
    from bachgan.evaluate import tune_windows
    from bachgan.metrics import batch_metrics

    others = tuple(v for v in range(4) if v != voice)
    return batch_metrics(tune_windows(voices), voices=others)


def show_score(v, tempo: float, voice: int):
    """The result as sheet music, the same score as the MusicXML download."""
    try:
        pages = app.score_svg(v, float(tempo))
    except ValueError as e:
        st.warning(f"The score could not be drawn ({e}). The MusicXML download has it.")
        return
    for svg in pages:
        st.image(svg, width="stretch")
    st.caption(
        f"The {VOICE_NAMES[voice]} is your melody. Engraved by Verovio from the MusicXML "
        "download below; key and spelling are BachGAN's best guess."
    )


def sound_summary(tempo: int) -> str:
    """The sound that plays: '80 BPM, Choir Aahs' (or each voice's instrument, in order)."""
    names = [st.session_state[f"h_inst_{i}"] for i in range(4)]
    return f"{tempo} BPM, " + (names[0] if len(set(names)) == 1 else " / ".join(names))


def show_result(
    result, report: ImportReport, label: str, seed: int, model: str, original=None, trunc=1.0
):
    """The sound, pianoroll, bar re-rolls, downloads and metrics of one harmonization."""
    voice = result.voice
    v = result.voices
    changed = len(st.session_state.h_rerolls["history"])
    more = f", {changed} bar change{'s' * (changed != 1)}" if changed else ""
    st.subheader(f"{label}: four voices (variation {seed}{more})")
    key = f" In {key_text(*result.context.key)}." if result.context is not None else ""
    st.caption(f"By {model}.{key}")
    if report.changes:
        st.info(f"**How BachGAN read your melody:** {report}.")
    # The sound settings are drawn under the player; their values are already in the state.
    tempo = st.session_state.h_tempo
    programs = [PROGRAMS[st.session_state[f"h_inst_{i}"]] for i in range(4)]
    midi = to_midi_bytes(v, tempo, programs=programs)
    played = midi
    if original is not None:  # a chorale: Bach's own setting plays the same way
        listen = st.radio(
            "Listen to",
            ["BachGAN's harmonization", "Bach's own"],
            key="h_listen",
            horizontal=True,
            help="Bach's harmonization of the same chorale melody, at the same tempo and with "
            "the same instruments, to compare by ear.",
        )
        if listen == "Bach's own":
            played = to_midi_bytes(original, tempo, programs=programs)
    with st.spinner("Rendering audio…"):
        app.audio_player(played)  # first: the sound is what the click is for
    # A form: a tempo set with the arrow keys, one step a press, is rendered once, on Apply.
    # Its title says what plays now, as a slider moved without Apply shows another value.
    with (
        st.expander(f"Sound: {sound_summary(tempo)}", key="h_sound_box"),
        st.form("h_sound", border=False),
    ):
        st.slider(
            "Tempo (quarter notes per minute)",
            int(LIMITS["min_tempo_bpm"]),  # every tempo a file may have
            int(LIMITS["max_tempo_bpm"]),
            key="h_tempo",
            help="Playback speed; also written into the MIDI and MusicXML files."
            + (f" It started at your file's tempo, {report.tempo:g} BPM." if report.tempo else ""),
        )
        cols = st.columns(2) + st.columns(2)  # two rows: instrument names fit
        for i, col in enumerate(cols):
            col.selectbox(
                VOICE_NAMES[i].title(),
                INSTRUMENTS,
                key=f"h_inst_{i}",
                help=f"The General MIDI instrument that plays the {VOICE_NAMES[i]}.",
            )
        b1, b2 = st.columns([1, 4], vertical_alignment="center")
        b1.form_submit_button(
            "Apply", type="primary", help="Play and write the result with these settings."
        )
        b2.caption(
            "Changes take effect when you press **Apply**: until then the player and the "
            "downloads keep the sound named above."
        )

    musicians_view(result, st.session_state.h_result.get("previous"))

    roll_tab, score_tab = st.tabs(["🎹 Pianoroll", "🎼 Score"], key="h_view", on_change="rerun")
    if roll_tab.open:  # only the tab in view is drawn
        with roll_tab:
            st.plotly_chart(
                pianoroll_figure(v, voice, bar_steps=STEPS_PER_BAR),
                key="h_roll",
                config=CHART_CONFIG,
            )
            st.caption(
                "Your melody is striped and outlined. Hover over (or tap) a note for its name "
                "and place; drag to zoom, double-click to zoom out."
            )
    if score_tab.open:
        with score_tab, st.spinner("Engraving the score…"):
            show_score(v, tempo, voice)
    reroll_controls(result, trunc)

    stem = app.slug(f"bachgan {label} seed {seed}")
    d1, d2, d3 = st.columns(3)
    d1.download_button(
        "⬇ MIDI",
        midi,
        f"{stem}.mid",
        "audio/midi",
        on_click="ignore",
        help="Four tracks (Soprano, Alto, Tenor, Bass) for any notation program or DAW.",
        width="stretch",
    )
    d2.download_button(
        "⬇ WAV",
        lambda: app.full_quality_wav(midi),
        f"{stem}.wav",
        "audio/wav",
        on_click="ignore",
        help="The audio you hear above, in full quality (44.1 kHz stereo).",
        width="stretch",
    )
    d3.download_button(
        "⬇ MusicXML",
        lambda: to_musicxml(v, tempo, title=f"{label} (BachGAN)"),
        f"{stem}.musicxml",
        "application/vnd.recordare.musicxml+xml",
        on_click="ignore",
        help="A score with bars, ties, clefs and a key signature, for MuseScore, Finale, "
        "Sibelius or Dorico.",
        width="stretch",
    )

    with st.expander("📊 Statistics for the curious: how Bach-like is it, in numbers?"):
        app.metrics_view(result_metrics(v, voice), voice)
        st.caption(
            "Measured on the three generated voices in 2-bar windows, as Bach's held-out "
            "chorales are. One short piece varies a lot; compare several variations."
        )
        st.caption(cleanup_caption(result.cleanup))

    if original is not None:
        with st.expander("Bach's own harmonization of this chorale"):
            st.plotly_chart(
                pianoroll_figure(original, voice), key="h_bach_roll", config=CHART_CONFIG
            )


# ---------------------------------------------------------------- page

st.title("🎼 Harmonize a melody")
st.caption("Pick a melody, say which voice it is, and BachGAN writes the other three.")

left, right = st.columns([3, 2], gap="large")
with right:
    voice = st.selectbox(
        "The melody is the…",
        range(4),
        key="h_voice",
        format_func=lambda v: VOICE_NAMES[v],
        help="Which of the four voices your melody is. It is moved by whole octaves into that "
        "voice's range; BachGAN writes the other three around it.",
    )
    choice = app.model_picker("h_model")
    # The seed and its button one above the other: side by side, a 1280 px window cut the
    # button's label to "New variati…".
    seed = st.number_input(
        "Variation number",
        min_value=0,
        max_value=MAX_SEED,
        step=1,
        key="h_seed",
        help="Each number is another harmonization of the same melody, and the same number "
        "always gives the same one. (Technically: the seed of the random latent vector the "
        "generator starts from.)",
    )
    st.button(
        "🎲 Another variation",
        on_click=new_variation,
        help="Harmonize again with a random variation number (a new random seed).",
        width="stretch",
    )
    truncation = st.slider(
        "How adventurous",
        0.2,
        1.5,
        step=0.05,
        key="h_trunc",
        help="Lower is safer and more typical; 1 is what the model learned with; higher is "
        "bolder and less tidy. (Technically: the truncation, a scale on the latent vector.)",
    )
    st.button(
        "Harmonize",
        type="primary",
        key="h_go",
        on_click=lambda: st.session_state.update(h_active=True),
        help="Write the other three voices (about a second).",
        width="stretch",
    )

with left:
    st.radio(
        "Melody",
        list(SOURCES),
        key="h_source",
        format_func=SOURCES.get,
        horizontal=True,
        help="Where the melody comes from.",
    )
    try:
        picked = melody_input(voice)
    except MelodyError as e:
        st.error(str(e))
        picked = None
    chosen_key = key_choice(picked[0], voice) if picked else None

if picked and st.session_state.get("h_active"):
    melody, report, label, original, ends = picked
    try:
        result = harmonize(choice, melody, voice, int(seed), float(truncation), ends, chosen_key)
    except MelodyError as e:
        st.error(str(e))
        result = None
    if result is not None:
        st.session_state.h_melody = {
            "label": label,
            "melody": melody,
            "voice": voice,
            "tempo": st.session_state.h_tempo,  # Explore plays it at the same speed
        }
        model = app.model_name(choice)
        show_result(result, report, label, int(seed), model, original, float(truncation))

elif not st.session_state.get("h_active"):
    app.load_model(choice)  # load the model now, so that the first click is quick

app.save(KEPT)
