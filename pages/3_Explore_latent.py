"""Explore variations (the latent space): walk between harmonizations of one melody.

Every seed is a point in the model's latent space (one latent row per bar). This page
interpolates between two seeds, wanders in a random direction, re-rolls a single bar and
lays out a gallery of variations; favourites are kept for the session and downloadable.
The settings at the top make a `Scene`; each tab is one function of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import streamlit as st

import app_state as app
from bachgan.melody import BUILTIN_TUNES, LIMITS, MelodyError, melody_from_text
from bachgan.midi import to_midi_bytes
from bachgan.plots import CHART_CONFIG, interpolation_figure, pianoroll_figure
from bachgan.presets import MAX_SEED
from bachgan.sampling import Harmonizer, interpolation, random_direction, reroll_bar, walk
from bachgan.voices import STEPS_PER_BAR, VOICE_NAMES, Voices

DEFAULT_TUNE = "Old Hundredth"
MAX_BARS = 16  # short pieces make changes easy to hear, and keep the players quick
MAX_FAVOURITES = 24
DEFAULTS = {
    "e_tune": None,  # the melody from Harmonize when there is one, else DEFAULT_TUNE
    "e_voice": 0,
    "e_bars": 4,
    "e_trunc": 1.0,
    "e_tempo": 80,
    "e_a": 1,
    "e_b": 2,
    "e_n": 6,
    "e_w_seed": 1,
    "e_w_dir": 7,
    "e_w_size": 0.15,
    "e_w_n": 6,
    "e_r_seed": 1,
    "e_g_seed": 1,
    "e_g_n": 6,
}
KEPT = [*DEFAULTS, "e_tab"]
# Short enough to fit side by side on a 360 px phone; each tab opens with a line saying more.
TABS = ["A → B", "Walk", "Re-roll", "Gallery", "☆ Kept"]


@dataclass
class Scene:
    """What every tab works on: the melody, its voice, the model and the sound settings."""

    h: Harmonizer
    model: str  # the model choice, as the favourites record it
    melody: Voices
    voice: int
    label: str  # the melody's name
    truncation: float
    tempo: int

    @property
    def key(self) -> tuple:
        """Results are kept while this stays the same (a newer save of a run: new results)."""
        return (self.h.version, self.melody.digest(), self.voice, self.truncation)

    def latent(self, seed: int) -> np.ndarray:
        return self.h.latent(self.melody.steps, int(seed))

    def render(self, zs: list[np.ndarray]) -> list[Voices]:
        """Harmonize the melody once per latent."""
        return [
            self.h.harmonize(self.melody, self.voice, z=z, truncation=self.truncation).voices
            for z in zs
        ]

    def stored(self, name: str) -> dict | None:
        """A tab's kept result, only while the scene still matches it."""
        s = st.session_state.get(name)
        return s if s and s["key"] == self.key else None


# ---------------------------------------------------------------- favourites


def keep(entry: dict):
    favs = app.favourites()
    if any(f["label"] == entry["label"] and f["z"] == entry["z"] for f in favs):
        st.toast(f"'{entry['label']}' is already in your favourites.")
        return
    if len(favs) >= MAX_FAVOURITES:
        st.toast(
            f"You have {MAX_FAVOURITES} favourites, the most kept here: download them or "
            "remove some first."
        )
        return
    favs.append(entry)
    st.toast(f"Kept '{entry['label']}' in your favourites.")


def keep_button(
    sc: Scene, label: str, voices: Voices, z, seed=None, key: str = "", origin: str = ""
):
    """Add a result to the favourites, with what it takes to make it again: the seed where
    one seed makes it, `origin` in words (which seeds, which step, which bars re-rolled)."""
    entry = {
        "label": label,
        "melody": sc.label,
        "voice": VOICE_NAMES[sc.voice],
        "model": sc.model,
        "truncation": sc.truncation,
        "seed": seed,
        "origin": origin or (f"seed {seed}" if seed is not None else ""),
        "z": np.asarray(z).round(5).tolist(),
        "midi": to_midi_bytes(voices, sc.tempo),
    }
    st.button(
        "☆ Keep",
        key=f"keep_{key}",
        on_click=keep,
        args=(entry,),
        help="Add this one to your favourites (see the ☆ Kept tab).",
    )


# ---------------------------------------------------------------- the settings


def scene() -> Scene | None:
    """Draw the settings; the scene they describe, or None after saying what is wrong."""
    harmonized = st.session_state.get("h_melody")
    mine = f"From Harmonize: {harmonized['label']}" if harmonized else None
    tunes = ([mine] if mine else []) + list(BUILTIN_TUNES)
    if st.session_state.e_tune not in tunes:
        st.session_state.e_tune = mine or DEFAULT_TUNE
    s1, s2 = st.columns([3, 2])  # two rows: long tune and model names stay readable
    s3, s4 = st.columns([2, 3])
    tune = s1.selectbox(
        "Melody",
        tunes,
        key="e_tune",
        help="A built-in tune, or the melody you last harmonized on the Harmonize page.",
    )
    if tune == mine:
        voice, full, label = harmonized["voice"], harmonized["melody"], harmonized["label"]
        if st.session_state.get("e_tempo_of") != label:  # it plays as it did on Harmonize
            st.session_state.e_tempo_of = label
            st.session_state.e_tempo = harmonized.get("tempo", st.session_state.e_tempo)
        s2.selectbox(
            "The melody is the…", [VOICE_NAMES[voice]], disabled=True, help="As on Harmonize."
        )
    else:
        voice = s2.selectbox(
            "The melody is the…",
            range(4),
            key="e_voice",
            format_func=lambda v: VOICE_NAMES[v],
            help="Which voice the tune is; the model writes the other three.",
        )
        full, label = melody_from_text(BUILTIN_TUNES[tune], VOICE_NAMES[voice])[0], tune
    max_bars = min(MAX_BARS, max(2, full.bars))
    wanted = st.session_state.setdefault("e_bars_wanted", st.session_state.e_bars)
    st.session_state.e_bars = min(wanted, max_bars)  # a shorter tune shortens it for a while
    bars = s3.slider(
        "Bars",
        2,
        max(max_bars, 3),
        key="e_bars",
        on_change=lambda: st.session_state.update(e_bars_wanted=st.session_state.e_bars),
        help=f"Explore with the first bars of the melody (at most {MAX_BARS}): short pieces "
        "make changes easy to hear.",
        disabled=max_bars <= 2,
    )
    with s4:
        choice = app.model_picker("e_model")
    with st.expander("Sound, and how adventurous"):
        a1, a2 = st.columns(2)
        truncation = a1.slider(
            "How adventurous",
            0.2,
            1.5,
            step=0.05,
            key="e_trunc",
            help="Lower is safer and more typical, higher bolder and less tidy. (Technically: "
            "the truncation, a scale on every latent vector.)",
        )
        tempo = a2.slider(
            "Tempo",
            int(LIMITS["min_tempo_bpm"]),
            int(LIMITS["max_tempo_bpm"]),
            key="e_tempo",
            help="Playback speed in quarter notes per minute.",
        )
    melody = full.slice(0, min(full.steps, bars * STEPS_PER_BAR))
    h = app.load_model(choice)
    if h is None:
        return None
    try:
        h.check(melody, voice)
    except MelodyError as e:
        st.error(str(e))
        return None
    return Scene(h, choice, melody, voice, label, float(truncation), int(tempo))


# ---------------------------------------------------------------- the tabs


def show_path(sc: Scene, s: dict, name: str):
    """Animation of the path, the whole path as one piece, and keeping single steps."""
    st.plotly_chart(
        interpolation_figure(s["frames"], s["labels"], sc.voice, title=s["title"]),
        key=f"{name}_fig",
        config=CHART_CONFIG,
    )
    st.caption("Press ▶ Play or drag the slider to move along the path.")
    midi = to_midi_bytes(Voices.concat(s["frames"]), sc.tempo)  # the path as one piece
    st.markdown(f"**The whole path as one piece** ({len(s['frames'])} × {sc.melody.bars} bars)")
    with st.spinner("Rendering audio…"):
        app.audio_player(midi)
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    c1.download_button(
        "⬇ MIDI of the whole path",
        midi,
        f"{app.slug(s['title'])}.mid",
        "audio/midi",
        on_click="ignore",
        help="All steps one after another, four tracks.",
    )
    k = c2.selectbox(
        "Step",
        range(len(s["frames"])),
        format_func=lambda i: s["labels"][i],
        key=f"{name}_pick",
        help="Choose one step of the path to keep.",
    )
    label = f"{s['title']}, {s['labels'][k]}"
    st.markdown(f"**Step {s['labels'][k]} on its own**")
    app.audio_player(to_midi_bytes(s["frames"][k], sc.tempo))  # the frame the slider shows
    origin = f"{s.get('origin', s['title'])}, step {s['labels'][k]}"
    keep_button(sc, label, s["frames"][k], s["zs"][k], key=f"{name}_{k}", origin=origin)


def interpolate_tab(sc: Scene):
    st.markdown(
        "**Blend two variations:** go step by step from variation A to variation B and hear "
        "one turn into the other."
    )
    c = st.columns(4, vertical_alignment="bottom")
    a = c[0].number_input(
        "Variation A", 0, MAX_SEED, key="e_a", help="Where the path starts (its seed)."
    )
    b = c[1].number_input("Variation B", 0, MAX_SEED, key="e_b", help="Where it ends (its seed).")
    n = c[2].slider("Steps", 3, 12, key="e_n", help="How many harmonizations along the path.")
    if c[3].button(
        "Blend",
        type="primary",
        key="e_int_go",
        help="Make the path. (Technically: a spherical interpolation between the two "
        "variations' latent vectors.)",
    ):
        zs = interpolation(sc.latent(a), sc.latent(b), n)  # each step a typical latent
        with st.spinner(f"Harmonizing {n} steps…"):
            frames = sc.render(zs)
        labels = ["A"] + [f"{t:.0%}" for t in np.linspace(0, 1, n)[1:-1]] + ["B"]
        title = f"{sc.label}: seed {a} → seed {b}"
        origin = f"between seed {a} (A) and seed {b} (B)"
        st.session_state.e_int = dict(
            key=sc.key, frames=frames, labels=labels, zs=zs, title=title, origin=origin
        )
    if s := sc.stored("e_int"):
        show_path(sc, s, "e_int")


def walk_tab(sc: Scene):
    st.markdown(
        "**Wander:** start at a variation and drift away from it in equal steps, in one "
        "random direction."
    )
    c = st.columns(5, vertical_alignment="bottom")
    start = c[0].number_input(
        "Start variation", 0, MAX_SEED, key="e_w_seed", help="Where to start (its seed)."
    )
    way = c[1].number_input(
        "Direction",
        0,
        MAX_SEED,
        key="e_w_dir",
        help="Each number is another direction (the seed of a random direction in the "
        "latent space).",
    )
    size = c[2].slider(
        "Step size", 0.05, 0.5, step=0.05, key="e_w_size", help="How far each step goes."
    )
    n = c[3].slider("Steps", 3, 12, key="e_w_n", help="How many harmonizations to make.")
    if c[4].button("Walk", type="primary", key="e_walk_go", help="Make the walk."):
        z = sc.latent(start)
        zs = walk(z, random_direction(z.shape, int(way)), n, size)
        with st.spinner(f"Harmonizing {n} steps…"):
            frames = sc.render(zs)
        labels = ["start"] + [f"+{k * size:.2f}" for k in range(1, n)]
        title = f"{sc.label}: seed {start}, direction {way}"
        origin = f"a walk from seed {start} in direction {way}"
        st.session_state.e_walk = dict(
            key=sc.key, frames=frames, labels=labels, zs=zs, title=title, origin=origin
        )
    if s := sc.stored("e_walk"):
        show_path(sc, s, "e_walk")


def reroll_tab(sc: Scene):
    st.markdown(
        "Keep everything and give one bar a new random start: that bar changes most, and "
        "its neighbours a little, as the model writes each bar together with the next."
    )
    c = st.columns(3, vertical_alignment="bottom")
    seed = c[0].number_input(
        "Start variation",
        0,
        MAX_SEED,
        key="e_r_seed",
        help="The harmonization you start from (its seed).",
    )
    if c[1].button("Start from this variation", key="e_r_start", help="Forget the re-rolls."):
        st.session_state.pop("e_bar", None)
    s = sc.stored("e_bar")
    if s is None or s["seed"] != seed:
        z = sc.latent(seed)
        s = dict(key=sc.key, seed=seed, z=z, history=[], prev=None, voices=sc.render([z])[0])
        st.session_state.e_bar = s
    n_bars = max(2, sc.melody.bars)
    bar_cols = st.columns(min(n_bars, 8))
    for b in range(n_bars):
        if bar_cols[b % len(bar_cols)].button(
            f"🎲 Re-roll bar {b + 1}",
            key=f"e_roll_{b}",
            help=f"A new variation of bar {b + 1} only (a new random latent for that bar).",
            width="stretch",
        ):
            new_seed = random.randrange(1_000_000)
            s["prev"] = s["voices"]
            s["z"] = reroll_bar(s["z"], b, new_seed, sc.h.preset)
            s["voices"] = sc.render([s["z"]])[0]
            s["history"].append(f"bar {b + 1} ← seed {new_seed}")
    n = len(s["history"])
    title = f"{sc.label}: seed {seed}" + (f", {n} re-roll{'s' * (n != 1)}" if n else "")
    st.caption(f"From seed {seed}: {'; '.join(s['history']) or 'no re-rolls yet'}.")
    st.plotly_chart(
        pianoroll_figure(s["voices"], sc.voice, title=title), key="e_bar_fig", config=CHART_CONFIG
    )
    app.audio_player(to_midi_bytes(s["voices"], sc.tempo))
    origin = f"seed {seed}" + (f", then {'; '.join(s['history'])}" if n else "")
    seed_kept = None if n else int(seed)
    keep_button(sc, title, s["voices"], s["z"], seed_kept, key="bar", origin=origin)
    if s["prev"] is not None:
        with st.expander("Before the last re-roll"):
            st.plotly_chart(
                pianoroll_figure(s["prev"], sc.voice), key="e_bar_prev", config=CHART_CONFIG
            )


def gallery_tab(sc: Scene):
    st.markdown("The same melody, harmonized several ways side by side.")
    c = st.columns(3, vertical_alignment="bottom")
    first = c[0].number_input(
        "First variation", 0, MAX_SEED, key="e_g_seed", help="The numbers (seeds) count up."
    )
    n = c[1].slider("How many", 2, 12, step=2, key="e_g_n", help="Number of variations.")
    c[2].button(
        "🎲 Random first variation",
        key="e_g_rand",
        on_click=lambda: st.session_state.update(e_g_seed=random.randrange(1_000_000)),
        help="Pick a random first variation number (seed).",
    )
    if st.button("Make variations", type="primary", key="e_g_go", help="Harmonize them all."):
        seeds = list(range(int(first), int(first) + n))
        with st.spinner(f"Harmonizing {n} variations…"):
            zs = [sc.latent(seed) for seed in seeds]
            st.session_state.e_gal = dict(key=sc.key, seeds=seeds, zs=zs, frames=sc.render(zs))
    if s := sc.stored("e_gal"):
        cards = list(zip(s["seeds"], s["zs"], s["frames"]))
        with st.spinner("Rendering audio…"):
            for i in range(0, len(cards), 2):  # row by row: a phone stacks them in order
                for col, (seed, z, v) in zip(st.columns(2), cards[i : i + 2]):
                    with col.container(border=True):
                        fig = pianoroll_figure(v, sc.voice, title=f"seed {seed}")
                        fig.update_layout(height=250, showlegend=False)
                        st.plotly_chart(fig, key=f"e_gal_{seed}", config=CHART_CONFIG)
                        app.audio_player(to_midi_bytes(v, sc.tempo))
                        keep_button(sc, f"{sc.label}, seed {seed}", v, z, seed, key=f"g{seed}")


def favourites_tab():
    favs = app.favourites()
    if not favs:
        st.info("Nothing kept yet: press ☆ Keep under any result on this page.")
        return
    st.caption(
        f"{len(favs)} of at most {MAX_FAVOURITES}. Favourites last while this browser tab is "
        "open: reloading the page or coming back later starts afresh, so download the ones "
        "you want to keep."
    )
    st.download_button(
        "⬇ All favourites (zip of MIDI files + seeds)",
        lambda: app.favourites_zip(favs),  # built when asked for
        "bachgan-favourites.zip",
        "application/zip",
        on_click="ignore",
        help="One MIDI file per favourite and favourites.json with the seeds and latents "
        "needed to make each one again.",
    )
    for i, f in enumerate(favs):
        with st.container(border=True):
            c1, c2 = st.columns([4, 1], vertical_alignment="center")
            made = f.get("origin") or f"seed {f['seed']}"
            model = app.model_name(f["model"])
            c1.markdown(f"**{f['label']}**  \n{f['voice']} given · {made} · {model}")
            if c2.button("Remove", key=f"fav_rm_{i}", help="Drop it from the favourites."):
                favs.pop(i)
                st.rerun()
            app.audio_player(f["midi"])


# ---------------------------------------------------------------- page


def page():
    st.title("🧭 Explore variations")
    st.caption(
        "Every variation number gives another harmonization of the same melody. Blend two, "
        "wander away from one, change one bar, or lay several side by side, and listen to "
        "what changes.",
        help="Technically: each number is the seed of a point in the model's latent space "
        "(one random vector per bar); this page moves between such points.",
    )
    sc = scene()
    if sc is None:
        return
    tabs = st.tabs(TABS, key="e_tab", on_change="rerun")  # only the open tab runs
    for tab, draw in zip(tabs, [interpolate_tab, walk_tab, reroll_tab, gallery_tab]):
        if tab.open:
            with tab:
                draw(sc)
    if tabs[-1].open:
        with tabs[-1]:
            favourites_tab()


st.set_page_config(page_title="Explore variations · BachGAN", page_icon="🧭", layout="wide")
app.menu()
app.restore(KEPT)
for k, v in DEFAULTS.items():
    st.session_state.setdefault(k, v)
try:
    page()
finally:  # the settings survive a visit to another page, however this run ends
    app.save(KEPT)
