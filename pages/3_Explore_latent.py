"""Explore latent: walk between harmonizations of one melody.

Every seed is a point in the model's latent space (one latent row per bar). This page
interpolates between two seeds, wanders in a random direction, re-rolls a single bar and
lays out a gallery of variations; favourites are kept for the session and downloadable.
"""

from __future__ import annotations

import random

import numpy as np
import streamlit as st

import app_state as app
from bachgan.melody import BUILTIN_TUNES, LIMITS, MelodyError, melody_from_text
from bachgan.midi import to_midi_bytes
from bachgan.plots import CHART_CONFIG, interpolation_figure, pianoroll_figure
from bachgan.sampling import random_direction, reroll_bar, slerp, step
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
st.set_page_config(page_title="Explore latent · BachGAN", page_icon="🧭", layout="wide")
app.menu()
app.restore(KEPT)
for k, v in DEFAULTS.items():
    st.session_state.setdefault(k, v)


def keep(entry: dict):
    favs = app.favourites()
    if len(favs) >= MAX_FAVOURITES:
        st.toast(
            f"You have {MAX_FAVOURITES} favourites, the most kept here: download them or "
            "remove some first."
        )
        return
    favs.append(entry)
    st.toast(f"Kept '{entry['label']}' in your favourites.")


def keep_button(label: str, voices: Voices, z, seed=None, key: str = ""):
    """Add a result to the favourites, with what it takes to make it again."""
    entry = {
        "label": label,
        "melody": ctx_label,
        "voice": VOICE_NAMES[voice],
        "model": choice,
        "truncation": float(truncation),
        "seed": seed,
        "z": np.asarray(z).round(5).tolist(),
        "midi": to_midi_bytes(voices, tempo),
    }
    st.button(
        "☆ Keep",
        key=f"keep_{key}",
        on_click=keep,
        args=(entry,),
        help="Add this one to your favourites (see the Favourites tab).",
    )


def render(zs: list[np.ndarray]) -> list[Voices]:
    """Harmonize the melody once per latent."""
    return [h.harmonize(melody, voice, z=z, truncation=truncation).voices for z in zs]


def stored(name: str) -> dict | None:
    """A result of this tab, only while the melody, voice, model and truncation still match."""
    s = st.session_state.get(name)
    return s if s and s["ctx"] == ctx else None


def show_path(s: dict, name: str):
    """Animation of the path, the whole path as one piece, and keeping single steps."""
    st.plotly_chart(
        interpolation_figure(s["frames"], s["labels"], voice, title=s["title"]),
        key=f"{name}_fig",
        config=CHART_CONFIG,
    )
    st.caption("Press ▶ Play or drag the slider to move along the path.")
    whole = Voices.concat(s["frames"])  # the path played as one piece
    midi = to_midi_bytes(whole, tempo)
    st.markdown(f"**The whole path as one piece** ({len(s['frames'])} × {bars} bars)")
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
    keep_button(f"{s['title']}, {s['labels'][k]}", s["frames"][k], s["zs"][k], key=f"{name}_{k}")


# ---------------------------------------------------------------- settings

st.title("🧭 Explore the latent space")
st.caption(
    "A seed picks a point in the model's latent space, and every point is a different "
    "harmonization of the same melody. Move between points and listen to what changes."
)

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
    picked = harmonized
    voice, full, ctx_label = picked["voice"], picked["melody"], picked["label"]
    if st.session_state.get("e_tempo_of") != ctx_label:  # it plays as it did on Harmonize
        st.session_state.e_tempo_of = ctx_label
        st.session_state.e_tempo = picked.get("tempo", st.session_state.e_tempo)
    s2.selectbox("The melody is the…", [VOICE_NAMES[voice]], disabled=True, help="As on Harmonize.")
else:
    voice = s2.selectbox(
        "The melody is the…",
        range(4),
        key="e_voice",
        format_func=lambda v: VOICE_NAMES[v],
        help="Which voice the tune is; the model writes the other three.",
    )
    full, ctx_label = melody_from_text(BUILTIN_TUNES[tune], VOICE_NAMES[voice])[0], tune
max_bars = min(MAX_BARS, max(2, full.bars))
st.session_state.e_bars = min(st.session_state.e_bars, max_bars)
bars = s3.slider(
    "Bars",
    2,
    max(max_bars, 3),
    key="e_bars",
    help=f"Explore with the first bars of the melody (at most {MAX_BARS}): short pieces make "
    "changes easy to hear.",
    disabled=max_bars <= 2,
)
with s4:
    choice = app.model_picker("e_model")
with st.expander("Sound and adventure"):
    a1, a2 = st.columns(2)
    truncation = a1.slider(
        "Adventure (truncation)",
        0.2,
        1.5,
        step=0.05,
        key="e_trunc",
        help="Scales every latent: lower is safer and more typical, higher more adventurous.",
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
    app.save(KEPT)  # the settings just changed survive a visit to another page
    st.stop()
try:
    h.check(melody, voice)
except MelodyError as e:
    st.error(str(e))
    app.save(KEPT)
    st.stop()
ctx = (h.version, melody.digest(), voice, float(truncation))  # a newer save of a run: new results

# ---------------------------------------------------------------- tabs

t_int, t_walk, t_bar, t_gal, t_fav = st.tabs(  # fixed labels: the open tab is kept by its label
    ["Interpolate A → B", "Random walk", "Re-roll a bar", "Gallery", "☆ Favourites"],
    key="e_tab",
    on_change="rerun",  # only the tab in view runs: its players alone are rendered
)

if t_int.open:
    with t_int:
        st.markdown("Slide smoothly from the harmonization of seed A to that of seed B.")
        c = st.columns(4, vertical_alignment="bottom")
        seed_a = c[0].number_input("Seed A", 0, 2**31 - 1, key="e_a", help="Where the path starts.")
        seed_b = c[1].number_input("Seed B", 0, 2**31 - 1, key="e_b", help="Where the path ends.")
        n = c[2].slider("Steps", 3, 12, key="e_n", help="How many harmonizations along the path.")
        if c[3].button("Interpolate", type="primary", key="e_int_go", help="Make the path."):
            za, zb = h.latent(melody.steps, int(seed_a)), h.latent(melody.steps, int(seed_b))
            ts = np.linspace(0.0, 1.0, n)
            zs = [slerp(za, zb, t) for t in ts]  # spherical: every step stays a typical latent
            with st.spinner(f"Harmonizing {n} steps…"):
                frames = render(zs)
            labels = ["A"] + [f"{t:.0%}" for t in ts[1:-1]] + ["B"]
            title = f"{ctx_label}: seed {seed_a} → seed {seed_b}"
            st.session_state.e_int = dict(ctx=ctx, frames=frames, labels=labels, zs=zs, title=title)
        if s := stored("e_int"):
            show_path(s, "e_int")

if t_walk.open:
    with t_walk:
        st.markdown("Start at a seed and take equal steps in one random direction.")
        c = st.columns(5, vertical_alignment="bottom")
        w_seed = c[0].number_input(
            "Start seed", 0, 2**31 - 1, key="e_w_seed", help="Where to start."
        )
        w_dir = c[1].number_input(
            "Direction seed", 0, 2**31 - 1, key="e_w_dir", help="Each number is another direction."
        )
        w_size = c[2].slider(
            "Step size", 0.05, 0.5, step=0.05, key="e_w_size", help="How far each step goes."
        )
        w_n = c[3].slider("Steps", 3, 12, key="e_w_n", help="How many harmonizations to make.")
        if c[4].button("Walk", type="primary", key="e_walk_go", help="Make the walk."):
            z0 = h.latent(melody.steps, int(w_seed))
            d = random_direction(z0.shape, int(w_dir))
            zs = [step(z0, d, k * w_size) for k in range(w_n)]
            with st.spinner(f"Harmonizing {w_n} steps…"):
                frames = render(zs)
            labels = ["start"] + [f"+{k * w_size:.2f}" for k in range(1, w_n)]
            title = f"{ctx_label}: seed {w_seed}, direction {w_dir}"
            st.session_state.e_walk = dict(
                ctx=ctx, frames=frames, labels=labels, zs=zs, title=title
            )
        if s := stored("e_walk"):
            show_path(s, "e_walk")

if t_bar.open:
    with t_bar:
        st.markdown(
            "Keep everything and draw a new latent for one bar only: that bar changes most, "
            "its neighbours a little (they share the windows around it)."
        )
        n_bars = max(2, melody.bars)
        c = st.columns(3, vertical_alignment="bottom")
        r_seed = c[0].number_input(
            "Start seed", 0, 2**31 - 1, key="e_r_seed", help="The harmonization you start from."
        )
        if c[1].button("Start from this seed", key="e_r_start", help="Forget the re-rolls."):
            st.session_state.pop("e_bar", None)
        s = stored("e_bar")
        if s is None or s["seed"] != r_seed:
            z = h.latent(melody.steps, int(r_seed))
            s = dict(ctx=ctx, seed=r_seed, z=z, history=[], prev=None, voices=render([z])[0])
            st.session_state.e_bar = s
        bar_cols = st.columns(min(n_bars, 8))
        for b in range(n_bars):
            if bar_cols[b % len(bar_cols)].button(
                f"🎲 Re-roll bar {b + 1}",
                key=f"e_roll_{b}",
                help=f"A new random latent for bar {b + 1} only.",
                width="stretch",
            ):
                new_seed = random.randrange(1_000_000)
                s["prev"] = s["voices"]
                s["z"] = reroll_bar(s["z"], b, new_seed, h.preset)
                s["voices"] = render([s["z"]])[0]
                s["history"].append(f"bar {b + 1} ← seed {new_seed}")
        steps_taken = "; ".join(s["history"]) or "no re-rolls yet"
        title = f"{ctx_label}: seed {r_seed}" + (
            f", {len(s['history'])} re-rolls" if s["history"] else ""
        )
        st.caption(f"From seed {r_seed}: {steps_taken}.")
        st.plotly_chart(
            pianoroll_figure(s["voices"], voice, title=title), key="e_bar_fig", config=CHART_CONFIG
        )
        app.audio_player(to_midi_bytes(s["voices"], tempo))
        keep_button(title, s["voices"], s["z"], None if s["history"] else int(r_seed), key="bar")
        if s["prev"] is not None:
            with st.expander("Before the last re-roll"):
                st.plotly_chart(
                    pianoroll_figure(s["prev"], voice), key="e_bar_prev", config=CHART_CONFIG
                )

if t_gal.open:
    with t_gal:
        st.markdown("The same melody, harmonized with several seeds side by side.")
        c = st.columns(3, vertical_alignment="bottom")
        g_seed = c[0].number_input(
            "First seed", 0, 2**31 - 1, key="e_g_seed", help="Seeds count up."
        )
        g_n = c[1].slider("How many", 2, 12, step=2, key="e_g_n", help="Number of variations.")
        c[2].button(
            "🎲 Random first seed",
            key="e_g_rand",
            on_click=lambda: st.session_state.update(e_g_seed=random.randrange(1_000_000)),
            help="Pick a random first seed.",
        )
        if st.button("Make variations", type="primary", key="e_g_go", help="Harmonize them all."):
            seeds = list(range(int(g_seed), int(g_seed) + g_n))
            with st.spinner(f"Harmonizing {g_n} variations…"):
                zs = [h.latent(melody.steps, sd) for sd in seeds]
                st.session_state.e_gal = dict(ctx=ctx, seeds=seeds, zs=zs, frames=render(zs))
        if s := stored("e_gal"):
            grid = st.columns(2)
            for i, (sd, z, v) in enumerate(zip(s["seeds"], s["zs"], s["frames"])):
                with grid[i % 2].container(border=True):
                    fig = pianoroll_figure(v, voice, title=f"seed {sd}")
                    fig.update_layout(height=250, showlegend=False)
                    st.plotly_chart(fig, key=f"e_gal_{i}", config=CHART_CONFIG)
                    app.audio_player(to_midi_bytes(v, tempo))
                    keep_button(f"{ctx_label}, seed {sd}", v, z, sd, key=f"g{sd}")

if t_fav.open:
    with t_fav:
        favs = app.favourites()
        if not favs:
            st.info("Nothing kept yet: press ☆ Keep under any result on this page.")
        else:
            st.caption(
                f"{len(favs)} of at most {MAX_FAVOURITES}. Favourites last while this browser "
                "tab is open: reloading the page or coming back later starts afresh, so "
                "download the ones you want to keep."
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
                    seed_txt = f"seed {f['seed']}" if f["seed"] is not None else "custom latent"
                    c1.markdown(
                        f"**{f['label']}**  \n{f['voice']} given · {seed_txt} · {f['model']}"
                    )
                    if c2.button("Remove", key=f"fav_rm_{i}", help="Drop it from the favourites."):
                        favs.pop(i)
                        st.rerun()
                    app.audio_player(f["midi"])

app.save(KEPT)
