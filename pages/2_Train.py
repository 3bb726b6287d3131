"""Train: start, watch, hear and stop a background training run.

UI only: run management is bachgan.runs, figures are bachgan.curves, and what the page says
about runs and presets is train_view. Everything shown is read from the run folders on disk,
so a reload or a second browser sees the same run.
"""

from __future__ import annotations

import functools

import streamlit as st

import app_state as app
import train_view
from bachgan import cpu, curves, devices, runs
from bachgan.plots import CHART_CONFIG, pianoroll_figure
from bachgan.presets import DEFAULT_PRECISION, MAX_SEED, PRESETS
from bachgan.voices import VOICE_NAMES

REFRESH_S = 3  # how often the live part of the page rereads a running run
# Widget values kept when the person visits another page and comes back.
KEPT = ["train_run", "train_preset", "train_seed", "train_name", "train_smoothing", "train_bf16"]
KEPT += [f"train_{what}_{p}" for what in ("iterations", "voices") for p in PRESETS]
STATE_TEXT = {
    "running": "🟢 training",
    "finished": "✅ finished",
    "stopped": "⏸️ stopped",
    "failed": "❌ failed",
    "interrupted": "⚠️ interrupted (its process ended without saying why)",
    "new": "⏳ starting",
}


# ---------------------------------------------------------------- cached helpers


@st.cache_data(max_entries=32, show_spinner="Decoding the samples…")
def _cached_sample(name: str, iteration: int, stamp: float) -> runs.Sample:
    del stamp  # part of the key only: a run made again under the same name has new samples
    return runs.load_sample(name, iteration)


def _sample(name: str, iteration: int) -> runs.Sample:
    return _cached_sample(name, iteration, runs.sample_stamp(name, iteration))


# ---------------------------------------------------------------- start form


def start_form(busy: str | None) -> None:
    if busy:
        st.info(busy, icon="⏳")
    gpus = devices.gpus()  # TensorFlow's list; starts no GPU
    if gpus:
        st.info(train_view.gpu_suggestion(gpus), icon="⚡")
    suggested = devices.GPU_PRESET if gpus else devices.CPU_PRESET
    preset = st.selectbox(
        "Model size (preset)",
        list(train_view.PRESET_HELP),
        index=list(train_view.PRESET_HELP).index(suggested),
        format_func=train_view.PRESET_LABEL.__getitem__,
        help="How big the model is. Bigger models can sound better but train much longer.",
        key="train_preset",
    )
    st.caption(train_view.preset_help(preset))
    top, every = runs.MAX_ITERATIONS[preset], PRESETS[preset].sample_every
    iterations = st.number_input(  # no max_value: a number too big gets a message at Start
        "Iterations",
        min_value=1,
        value=20 if preset == "tiny" else 2000,
        step=10 if preset == "tiny" else 100,
        key=f"train_iterations_{preset}",
        help=f"Training steps (1 to {top}). Each one shows the critic real and generated "
        f"chorales and improves the generator a little. Samples and a saved model come every "
        f"{every}.",
    )
    voices = st.multiselect(
        "Voices it learns to harmonize",
        VOICE_NAMES,
        default=[VOICE_NAMES[v] for v in PRESETS[preset].condition_voices],  # as the preset
        format_func=str.title,
        key=f"train_voices_{preset}",
        help="The voice a person gives the model; it writes the other three. 'Soprano' only is "
        "the original melody harmonizer; all four lets you give a bass line, for example.",
    )
    seed = st.number_input(
        "Seed",
        min_value=0,
        max_value=MAX_SEED,
        value=0,
        step=1,
        key="train_seed",
        help="Starting point of the random numbers. The same settings and seed train the same "
        "model again; another seed gives another model.",
    )
    # Offered only where it pays: on a CPU without native bfloat16 it is much slower. Ticked
    # at first, as `train` would choose; on a GPU `train` chooses (bachgan.devices).
    precision = None
    if not gpus and cpu.native_bfloat16():
        bf16 = st.checkbox(
            "Faster arithmetic (bfloat16)",
            value=True,
            key="train_bf16",
            help=train_view.bfloat16_help(),
        )
        precision = "mixed_bfloat16" if bf16 else DEFAULT_PRECISION
    name = st.text_input(
        "Run name (optional)",
        max_chars=64,
        key="train_name",
        placeholder="e.g. my-first-run (left empty: preset, date and time)",
        help="A folder name under runs/: letters, digits, '-', '_' and '.'.",
    )
    if st.button("Start training", type="primary", key="train_start", disabled=bool(busy)):
        request = runs.TrainRequest(
            preset=preset,
            iterations=int(iterations),
            seed=int(seed),
            condition_voices=tuple(voices),
            name=name.strip() or None,
            precision=precision,
        )
        try:
            with st.spinner("Starting the training process…"):
                started = runs.start(request)
        except runs.TrainRequestError as err:
            for problem in err.problems:
                st.error(problem)
        except (runs.TrainingBusy, runs.TrainingDisabled) as err:
            st.warning(str(err))
        else:
            st.session_state["train_run"] = started
            # A click already on its way carries the old link: it must not bring that run back.
            st.session_state["train_superseded_link"] = st.query_params.get("run")
            st.query_params["run"] = st.session_state["train_run_link"] = started
            st.rerun()


# ---------------------------------------------------------------- one run


def progress_block(info: runs.RunInfo) -> None:
    st.markdown(f"**{info.name}** · {STATE_TEXT.get(info.effective_state, info.effective_state)}")
    if info.iterations > 0:
        st.progress(
            min(max(info.iteration / info.iterations, 0.0), 1.0),
            text=f"iteration {info.iteration:,} of {info.iterations:,}",
        )
    facts = [train_view.device_words(info.device, info.running), f"preset **{info.preset or '…'}**"]
    if info.precision != DEFAULT_PRECISION:
        facts.append("**faster arithmetic** (bfloat16)")
    if info.budget_minutes:
        facts.append(f"stops after **{info.budget_minutes:g} min** of training at the latest")
    if info.running:
        eta = train_view.format_seconds(info.eta_seconds)
        facts.append(f"time left **{eta or 'estimating…'}** (from the last iterations)")
    if info.updated:
        facts.append(f"last update {train_view.readable_time(info.updated)}")
    st.markdown(" · ".join(facts))


def run_controls(info: runs.RunInfo, enabled: bool, busy: str | None) -> None:
    """Stop while running; resume (optionally for longer) otherwise."""
    if not enabled:
        return
    if info.running:
        if not runs.stoppable(info.name):
            st.caption(
                "This run was started outside the app (e.g. from a terminal): stop it there."
            )
            return
        stopping = st.session_state.get("train_stopping") == (info.name, info.pid)
        if st.button(
            "Stop after this iteration",
            key="train_stop",
            disabled=stopping,
            help="Saves the model and stops; you can resume it later.",
        ):
            try:
                runs.stop(info.name)
            except runs.RunError as err:
                st.warning(str(err))
            else:
                st.session_state["train_stopping"] = (info.name, info.pid)
                stopping = True
        if stopping:
            st.caption("Stopping: the current iteration finishes and the model is saved…")
        return
    if not info.resumable:
        return
    top = runs.MAX_ITERATIONS.get(info.preset, 20000)
    lowest = info.iteration + 1  # resuming always trains more
    if lowest > top:
        st.caption(f"This run has had the most iterations its preset allows ({top:,}).")
        return
    # a stopped run goes on to its goal; a finished one offers twice its training
    goal = info.iterations if info.iterations > info.iteration else 2 * info.iteration
    until = st.number_input(
        "Resume up to iteration",
        min_value=lowest,
        max_value=top,
        value=min(max(goal, lowest), top),
        key=f"train_resume_to_{info.name}",
        help="Continues from the last saved checkpoint; raise it to train a finished run "
        "longer. A time limit the run was started with no longer applies.",
    )
    if st.button("Resume", key="train_resume", disabled=bool(busy)):
        try:
            runs.resume(info.name, iterations=int(until))
        except (runs.RunError, runs.TrainingBusy) as err:
            st.warning(str(err))
        else:
            st.rerun()


def problems_block(info: runs.RunInfo) -> None:
    if info.effective_state in ("failed", "interrupted"):
        if info.error:
            st.error(f"Error: {info.error}")
        elif info.effective_state == "interrupted":
            st.warning(
                "The training process ended without saving its state (it was killed, or the "
                "machine restarted). Resume continues from the last checkpoint."
            )
        st.code(runs.log_tail(info.name, 40) or "(the log is empty)", language=None)
    else:
        with st.expander("The training program's own messages (raw log)"):
            st.code(runs.log_tail(info.name, 40) or "(no log yet)", language=None)


def curves_block(rows: list[dict], every: int, key: str = "train") -> None:
    """In words, then the losses and the musical metrics of one run's rows (metrics every
    `every` iterations)."""
    st.markdown("\n".join(f"- {s}" for s in train_view.learning_words(rows)))
    losses, music = st.tabs(["Critic and generator", "Music vs Bach"])
    with losses:
        smoothing = st.slider(
            "Smoothing",
            0.0,
            0.99,
            0.6,
            0.01,
            key=f"{key}_smoothing",
            help="Averages out the iteration-to-iteration noise; the raw curve stays faint.",
        )
        fig = curves.loss_figure(rows, smoothing)
        fig.for_each_annotation(
            lambda a: a.update(text=train_view.CURVE_TITLES.get(a.text, a.text))
        )
        st.plotly_chart(fig, key=f"{key}_losses")
        st.caption(
            "**Gap: Bach vs generator** is how far apart the critic finds Bach's chorales and "
            "the generator's (technically, the Wasserstein estimate: its mean score for Bach "
            "minus its mean score for the generator); it should fall and level off. The "
            "critic's own score (its loss) is minus that gap plus the **smoothness** penalty "
            "(the gradient penalty), which should stay small. The generator's score (its "
            "loss) is minus the critic's score for its harmonizations: only its trend matters."
        )
    with music:
        ref = app.bach_reference(0, start=False) or {}  # never parses the corpus here
        fig = curves.music_figure(rows, ref)
        fig.for_each_annotation(
            lambda a: a.update(text=train_view.MUSIC_TITLES.get(a.text, a.text))
        )
        st.plotly_chart(fig, key=f"{key}_music")
        st.caption(
            f"Measured on the same held-out melodies every {every} iterations, on the alto, "
            "tenor and bass after clean-up. Dashed: Bach's own chorales; green: the target."
            + ("" if ref else " Bach's lines appear once his chorales have been parsed.")
            + " The panels as the evaluation names them: "
            + "; ".join(f"*{plain}*: {label}" for label, plain in train_view.MUSIC_TITLES.items())
            + "."
        )


def live_panel(name: str, enabled: bool, busy: str | None) -> None:
    info = runs.run_info(name)
    if st.session_state.get("train_live") == name and not info.running:
        st.session_state["train_live"] = None
        st.rerun(scope="app")  # it just ended: redraw the whole page (buttons, table)
    if info.running:
        st.session_state["train_live"] = name
    progress_block(info)
    problems_block(info)
    run_controls(info, enabled, busy)
    curves_block(runs.read_metrics(name), runs.metrics_every(name))


def pick_iteration(name: str, its: list[int]) -> int:
    """The sample slider. It starts at the newest sample and then stays where it is: a
    newer sample arriving while someone listens must not swap the player's sound under them
    (that stopped and rewound the playback, issue 17 item 7). A button offers the newest.

    A keyed widget keeps its own value and ignores `value=`; the button writes the newest
    iteration into its state before the slider is drawn again."""
    key = f"train_sample_it_{name}"
    if st.session_state.get(key) not in its:  # the first visit, or a sample that went
        st.session_state[key] = its[-1]
    # Always a container here, empty or not: an element that came and went would move the
    # player to another place in the page, and the browser would draw a new one (silent).
    notice = st.container()
    if st.session_state[key] != its[-1]:
        notice.button(
            f"🆕 A newer sample is ready (iteration {its[-1]}): show it",
            key=f"train_sample_newest_{name}",
            on_click=lambda: st.session_state.update({key: its[-1]}),
            help="The sample shown stays put while you listen; this switches to the newest.",
        )
    if len(its) == 1:
        st.caption(f"Iteration {its[0]} (more samples follow as training goes on).")
        return its[0]
    return st.select_slider(
        "Iteration",
        options=its,
        key=key,
        help="The same held-out melodies, harmonized by the model as it was at that "
        "iteration: slide to hear it learn.",
    )


def samples_panel(name: str) -> None:
    st.subheader("Samples")
    its = runs.samples(name)
    if not its:
        every = runs.sample_every(name)
        when = f"after {every} iterations" if every else "as training goes"
        st.info(f"No samples yet: the first ones are saved {when}.")
        return
    iteration = pick_iteration(name, its)
    sample = _sample(name, iteration)
    labels = [f"Melody {i + 1} (given: {VOICE_NAMES[g]})" for i, g in enumerate(sample.given)]
    k = st.selectbox(
        "Excerpt",
        range(len(labels)),
        format_func=labels.__getitem__,
        key=f"train_sample_k_{name}",
        help="Eight fixed two-bar excerpts the model never trained on, each with one given voice.",
    )
    given = sample.given[k]
    st.plotly_chart(
        pianoroll_figure(sample.pieces[k], given, title=f"Iteration {iteration}: {labels[k]}"),
        key="train_sample_roll",
        config=CHART_CONFIG,
    )
    app.audio_player(sample.midi[k])
    st.download_button(
        "Download MIDI",
        sample.midi[k],
        file_name=f"{name}-iter{iteration:06d}-{k + 1}.mid",
        mime="audio/midi",
        key="train_sample_midi",
        help="The excerpt as a four-track MIDI file (Soprano, Alto, Tenor, Bass).",
    )


# ---------------------------------------------------------------- page


def run_panel(panel):
    """A panel of one run that, if the run's folder is deleted or damaged while the page
    shows it, says so instead of showing a traceback (fragments rerun on their own)."""

    @functools.wraps(panel)  # its own name: Streamlit tells fragments apart by it
    def draw(name: str, *args) -> None:
        try:
            panel(name, *args)
        except (runs.RunNameError, runs.RunStateError) as err:
            st.warning(f"This part of run {name!r} cannot be shown: {err}.")

    return draw


def runs_table() -> None:
    small = {
        key: st.column_config.Column(width="small")
        for key in ("state", "progress", "preset", "time left")
    }
    st.dataframe(
        [train_view.run_row(r) for r in runs.list_runs()],
        hide_index=True,
        key="train_table",
        column_config=small | {"model saved": st.column_config.CheckboxColumn("saved")},
    )


def chosen_run(names: list[str], active: runs.RunInfo | None) -> str | None:
    """The run to show: ?run= when valid, else this session's, else the running or newest."""
    wanted = st.query_params.get("run")
    if wanted is not None and wanted == st.session_state.get("train_superseded_link"):
        wanted = st.session_state.get("train_run_link")  # an old link, from before a start
    if wanted is not None:
        try:
            runs.resolve_run(wanted)
        except runs.RunNameError as err:
            st.error(f"The link asks for a run that cannot be shown: {err}")
            wanted = None
    if wanted in names and st.session_state.get("train_run_link") != wanted:
        st.session_state["train_run"] = wanted
    st.session_state["train_run_link"] = wanted
    if not names:
        return None
    if st.session_state.get("train_run") not in names:
        st.session_state["train_run"] = active.name if active else names[0]
    return st.selectbox(
        "Run",
        names,
        key="train_run",
        help="Pick a run to see its curves and samples. The page link includes it (?run=…).",
    )


def shipped_curves() -> None:
    """How the shipped model learned: what there is to see where nobody can train."""
    rows, every = runs.shipped_curve()
    if rows:
        st.subheader("How the shipped model learned")
        curves_block(rows, every, key="shipped")


def main() -> None:
    st.set_page_config(page_title="Train · BachGAN", page_icon="🏋️", layout="wide")
    app.menu()
    app.restore(KEPT)
    try:
        page()
    finally:  # also after an early return or st.rerun
        app.save(KEPT)


def page() -> None:
    st.title("Train a model")
    st.markdown(
        "Train BachGAN on Bach's chorales in the background, watch it learn and listen to "
        "its attempts. One run at a time per machine; you can leave this page and come back."
    )
    enabled, reason = runs.training_enabled()
    infos = runs.list_runs()
    active = next((r for r in infos if r.running), None)
    busy = runs.busy_reason() if enabled else None
    if enabled:
        with st.expander("Start a new training run", expanded=not infos):
            start_form(busy)
    else:
        st.info(reason, icon="🔒")

    if not infos:
        if enabled:
            st.info("No training runs yet: start one above.")
        shipped_curves()
        return
    st.subheader("Runs")
    st.fragment(runs_table, run_every=REFRESH_S if active else None)()
    name = chosen_run([r.name for r in infos], active)
    if name is None:
        return
    st.query_params["run"] = st.session_state["train_run_link"] = name
    live = next(r for r in infos if r.name == name).running
    refresh = REFRESH_S if live else None
    st.fragment(run_panel(live_panel), run_every=refresh)(name, enabled, busy)
    # New samples come every few dozen iterations: a slower refresh is enough, and keeps the
    # audio player calm.
    st.fragment(run_panel(samples_panel), run_every=5 * refresh if live else None)(name)


main()
