"""BachGAN's entry point: the navigation and the home page.

The pages live in pages/ (one file each); st.navigation gives them proper titles and
makes this file the home page. Nothing slow happens here before the first paint: the
model loads after the text and buttons are drawn, and Bach's chorales are never parsed
from this page.

The menu is Streamlit's own, at the top (position="top"): on a phone Streamlit shows it
in the sidebar instead and closes the sidebar when a page is tapped (a menu of page links
drawn by the app stayed open over the new page, issue 17 item 2). With a pages/ folder
present, though, a server starts in Streamlit's older folder mode and switches to
st.navigation the first time this file runs; until then every page draws its own links
(`app_state.menu`), as the folder mode's menu would call this page "streamlit app".
"""

from __future__ import annotations

import streamlit as st

import app_state as app
from bachgan import runs

HOME_TEMPO = 80  # BPM, the Harmonize page's default


def home():
    app.menu()
    st.title("BachGAN")
    st.markdown(
        "**Give BachGAN a melody and it writes the other three voices of a four-part chorale "
        "in the style of J. S. Bach** - a soprano, alto, tenor and bass you can hear, see "
        "and download."
    )
    if st.button(
        "🎵 Harmonize a tune now",
        type="primary",
        help=f"Harmonizes '{app.DEMO_TUNE}' with the shipped model and opens the result.",
    ):
        st.session_state.demo = True
        st.switch_page("pages/1_Harmonize.py")
    training, _ = runs.training_enabled()
    for col, (path, title, icon, link, why) in zip(st.columns(len(app.PAGES)), app.PAGES):
        if title == "Train" and not training:
            link, why = "See how it learned", "Training is off on this server."
        col.page_link(path, label=link, icon=icon, help=why)

    picture = st.container()
    st.subheader("The model")
    try:
        h = app.harmonizer(app.SHIPPED)
    except Exception as e:  # a missing or broken checkpoint must not take the page down
        st.error(f"The shipped model could not be loaded: {e}")
        return
    st.markdown(f"**Loaded:** the shipped model ({app.model_label(h)}).")
    with st.expander("📊 Statistics for the curious: how Bach-like is the model, in numbers?"):
        quality, source = app.model_quality(app.SHIPPED)
        app.metrics_view(quality, 0, column="this model", start=False)
        st.caption(
            f"The model's figures are {source}. Bach's are his held-out chorales, measured "
            "the same way (the three voices under the soprano, in 2-bar windows)."
        )

    with picture:
        from bachgan.melody import builtin_tune
        from bachgan.midi import to_midi_bytes
        from bachgan.plots import CHART_CONFIG, pianoroll_figure

        given = h.preset.default_voice
        demo = h.harmonize(builtin_tune(app.DEMO_TUNE), given, seed=0)
        st.plotly_chart(
            pianoroll_figure(demo.voices, given, title="Ode to Joy, harmonized by BachGAN"),
            key="home_roll",
            config=CHART_CONFIG,
        )
        st.caption(
            "Each colour is a voice (the legend names them); the striped, outlined one is the "
            "melody you give, the others are written by the model. Hover over (or tap) a note "
            "to see its name."
        )
        # The same tempo and instruments the Harmonize page starts with.
        app.audio_player(to_midi_bytes(demo.voices, HOME_TEMPO))

    with st.expander("How does it work?"):
        st.markdown(
            "Two networks learned from Bach's chorales together: a *generator* that writes "
            "three voices around a given one, and a *critic* that listens to Bach's chorales "
            "and to the generator's attempts and learns to tell them apart, while the "
            "generator learns to fool it. A variation number picks one of many possible "
            "harmonizations; a small clean-up step then turns the network's raw output into "
            "one clear line per voice. See **Explore variations** to move between "
            "harmonizations, and **Train** to train your own model.\n\n"
            "In technical terms: a conditional Wasserstein GAN with gradient penalty "
            "(WGAN-GP); the variation number is the seed of its random latent vector."
        )


st.set_page_config(page_title="BachGAN", page_icon="🎼", layout="wide")
pages = [st.Page(home, title="Home", icon="🏠", default=True)]
pages += [st.Page(p[0], title=p[1], icon=p[2]) for p in app.PAGES]
app.NAV_PAGES[:] = pages  # from now on the pages link to these (see app.menu)
st.navigation(pages, position="top").run()
