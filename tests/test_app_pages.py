"""The app's pages run headless with Streamlit's AppTest: no browser, the real model.

Each test drives a page the way a person would (pick, click) and checks what appears:
a pianoroll (plotly_chart), an audio player, st.error for bad input, never an exception.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from bachgan import plots  # noqa: E402
from bachgan.describe import METRIC_WORDS  # noqa: E402
from bachgan.metrics import HEADLINE  # noqa: E402
from bachgan.sampling import SHIPPED_DIR  # noqa: E402
from bachgan.voices import Voices  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # the first run loads TensorFlow and the model; a loaded CI machine is slow


def app(page: str) -> AppTest:
    return AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_home_renders_model_and_picture():
    at = app("streamlit_app.py").run()
    no_exception(at)
    assert at.title[0].value == "BachGAN"
    assert len(at.get("plotly_chart")) == 1  # the picture
    assert len(at.get("audio")) == 1  # and its sound
    assert any("training iterations" in m.value for m in at.markdown)
    table = at.table[0].value.set_index("metric")
    evaluation = json.loads((SHIPPED_DIR / "evaluation.json").read_text())["rows"]
    for key, label in HEADLINE:  # the shipped model's own evaluation, beside Bach's
        label = METRIC_WORDS[key]  # in plain words; the technical name in the caption
        assert table.loc[label, "this model"] == plots._fmt(evaluation["model/all"][key])
        assert table.loc[label, "Bach"] == plots._fmt(evaluation["bach/soprano"][key])
    assert any("chord-tone rate (sonorities of 3+ voices" in c.value for c in at.caption)


def test_home_one_click_lands_on_a_harmonized_result():
    at = app("streamlit_app.py").run()
    at.button[0].click().run()
    no_exception(at)
    assert at.get("plotly_chart") and at.get("audio")
    assert any("Ode to Joy" in h.value for h in at.subheader)


def test_harmonize_page_renders_before_any_click():
    at = app("pages/1_Harmonize.py").run()
    no_exception(at)
    assert not at.get("audio")


def test_harmonize_a_builtin_tune():
    at = app("pages/1_Harmonize.py").run()
    at.selectbox(key="h_tune").select("Old Hundredth").run()
    at.button(key="h_go").click().run()
    no_exception(at)
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("audio")) == 1
    assert not at.error
    assert at.table  # metrics beside Bach's
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["⬇ MIDI", "⬇ WAV", "⬇ MusicXML"]


def test_the_key_is_read_off_the_melody_or_chosen():
    """Auto: the key read off the tune (Old Hundredth: G major) is the harmony's and the
    caption says it; a chosen key replaces it; another tune starts again from auto."""
    at = app("pages/1_Harmonize.py").run()
    at.selectbox(key="h_tune").select("Old Hundredth").run()
    assert "G major (read off the melody)" in at.selectbox(key="h_key").format_func("auto")
    at.button(key="h_go").click().run()
    no_exception(at)
    assert at.session_state["h_result"]["result"].context.key == (7, "major")
    assert any("In G major." in c.value for c in at.caption)
    at.selectbox(key="h_key").select("4 minor").run()
    no_exception(at)
    result = at.session_state["h_result"]["result"]
    assert result.context.key == (4, "minor")
    assert any("In E minor." in c.value for c in at.caption)
    at.selectbox(key="h_tune").select("Frère Jacques").run()
    assert at.selectbox(key="h_key").value == "auto"


def test_the_score_tab_shows_the_result_as_sheet_music():
    at = app("pages/1_Harmonize.py").run()
    at.selectbox(key="h_tune").select("Old Hundredth").run()
    at.button(key="h_go").click().run()
    assert at.get("plotly_chart") and not at.get("imgs")  # the pianoroll tab is in view
    at.session_state["h_view"] = "🎼 Score"  # what clicking the tab does
    at.run()
    no_exception(at)
    assert not at.get("plotly_chart") and at.get("audio")  # only the tab in view is drawn
    (image,) = at.get("image")
    url = image.proto.imgs[0].url
    assert url.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(url.split(",", 1)[1]).decode()
    v = at.session_state["h_result"]["result"].voices
    notes = sum(len(v.notes(i)) for i in range(4))  # notes tied over a bar line: 2 heads
    assert svg.count('class="note"') >= notes and svg.count('class="staff"') % 4 == 0


def test_a_piece_too_long_for_the_player_says_so_and_keeps_its_downloads():
    at = app("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("text").run()
    at.text_area(key="h_text").input(" | ".join(["C5h G4h", "A4h E4h"] * 32)).run()  # 64 bars
    at.session_state["h_tempo"] = 20  # 13 minutes
    at.button(key="h_go").click().run()
    no_exception(at)
    assert not at.get("audio") and any("longer than the 8 minutes" in i.value for i in at.info)
    assert len(at.get("download_button")) == 3 and at.get("plotly_chart")
    at.session_state["h_tempo"] = 120  # 2 minutes 8 seconds
    at.run()
    assert at.get("audio")


def test_a_player_reads_the_length_of_its_midi_once_not_on_every_rerun(monkeypatch):
    from bachgan import midi

    calls = []
    real = midi.duration_s
    monkeypatch.setattr(midi, "duration_s", lambda data: calls.append(data) or real(data))
    at = app("pages/1_Harmonize.py").run()
    at.button(key="h_go").click().run()
    assert at.get("audio")
    before = len(calls)  # 0 when an earlier test played the same piece
    at.run().run()
    no_exception(at)
    assert at.get("audio") and len(calls) == before


def test_sound_settings_apply_together_not_at_each_step_of_the_tempo_slider():
    at = app("pages/1_Harmonize.py").run()
    at.button(key="h_go").click().run()
    at.slider(key="h_tempo").set_value(81).run()  # one arrow key press: nothing is rendered
    assert at.session_state["h_tempo"] == 80 and at.session_state["h_melody"]["tempo"] == 80
    at.slider(key="h_tempo").set_value(90)
    at.selectbox(key="h_inst_3").select("Church Organ")
    (apply,) = at.form_submit_button
    apply.click().run()
    no_exception(at)
    assert at.session_state["h_tempo"] == 90 and at.session_state["h_melody"]["tempo"] == 90
    assert at.session_state["h_inst_3"] == "Church Organ" and at.get("audio")


def test_the_sound_title_names_what_plays_and_the_form_says_apply_is_needed():
    at = app("pages/1_Harmonize.py").run()
    at.button(key="h_go").click().run()
    (sound,) = [e for e in at.expander if e.label.startswith("Sound:")]
    assert sound.label == "Sound: 80 BPM, Choir Aahs"
    assert any("press **Apply**" in c.value for c in at.caption)
    at.slider(key="h_tempo").set_value(100).run()  # moved, not applied: 80 still plays
    assert [e.label for e in at.expander if e.label.startswith("Sound:")] == [sound.label]
    at.slider(key="h_tempo").set_value(120)
    at.selectbox(key="h_inst_3").select("Church Organ")
    at.form_submit_button[0].click().run()
    no_exception(at)
    labels = [e.label for e in at.expander if e.label.startswith("Sound:")]
    assert labels == ["Sound: 120 BPM, Choir Aahs / Choir Aahs / Choir Aahs / Church Organ"]


def test_new_variation_changes_the_seed_and_keeps_a_result():
    at = app("pages/1_Harmonize.py").run()
    at.button(key="h_go").click().run()
    before = at.number_input(key="h_seed").value
    first = at.session_state["h_result"]["result"].voices
    next(b for b in at.button if "Another variation" in b.label).click().run()
    no_exception(at)
    seed = at.number_input(key="h_seed").value
    assert seed != before and at.get("audio")
    assert at.session_state["h_result"]["key"][3] == seed  # the result is the new seed's
    assert f"variation {seed})" in at.subheader[0].value
    assert at.session_state["h_result"]["result"].voices != first


def test_bad_text_melody_shows_an_error_and_the_page_keeps_working():
    at = app("pages/1_Harmonize.py").run()
    at.button(key="h_go").click().run()
    at.radio(key="h_source").set_value("text").run()
    at.text_area(key="h_text").input("C4q D4q X9q").run()
    no_exception(at)
    assert len(at.error) == 1 and "X9q" in at.error[0].value
    assert not at.get("audio")  # no stale result under the error
    # Fixing the text brings the result back without reloading.
    at.text_area(key="h_text").input("C4q D4 E4 F4 | G4h G4h").run()
    no_exception(at)
    assert not at.error and at.get("audio")


def test_a_bach_chorale_is_listed_by_title_and_harmonized(corpus):
    at = app("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("bach").run()
    chorales = at.selectbox(key="h_chorale")
    assert "BWV 347 — Ich dank’ dir, lieber Herre (A major)" in chorales.options
    assert "BWV 178.7 (A minor)" in chorales.options  # no title known: the number alone
    chorales.set_value("bwv347").run()
    at.button(key="h_go").click().run()
    no_exception(at)
    assert at.get("audio") and not at.error
    assert at.subheader[0].value.startswith("BWV 347 — Ich dank’ dir, lieber Herre (soprano)")
    theirs = at.get("audio")[0].proto.SerializeToString()
    at.radio(key="h_listen").set_value("Bach's own").run()  # #17 item 5: hear Bach's setting
    no_exception(at)
    assert len(at.get("audio")) == 1 and at.get("audio")[0].proto.SerializeToString() != theirs
    at.radio(key="h_listen").set_value("BachGAN's harmonization").run()
    assert at.get("audio")[0].proto.SerializeToString() == theirs


def test_the_chorales_are_in_bwv_order_with_keys_written_as_musicians_write_them(corpus):
    import re

    at = app("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("bach").run()
    options = at.selectbox(key="h_chorale").options
    numbers = [tuple(map(int, re.match(r"BWV ([\d.]+)", o)[1].split("."))) for o in options]
    assert numbers == sorted(numbers) and numbers[0] < (25,) < numbers[-1]  # 4.8 ... 417
    keys = [re.search(r"\(([^()]+)\)$", o)[1] for o in options]
    assert "BWV 245.40 — Herzlich lieb hab’ ich dich, o Herr (E♭ major)" in options
    assert "F♯ minor" in keys and "B♭ major" in keys
    assert all(re.fullmatch(r"[A-G][♭♯]? (major|minor)", k) for k in keys), keys


def test_leaving_an_uploaded_file_gives_back_the_tempo_chosen_before_it():
    from bachgan.melody import builtin_tune
    from bachgan.midi import to_midi_bytes

    at = app("pages/1_Harmonize.py").run()
    at.session_state["h_tempo"] = 120  # the listener's tempo, applied earlier
    at.button(key="h_go").click().run()
    data = to_midi_bytes(builtin_tune("Old Hundredth"), tempo=96)
    at.radio(key="h_source").set_value("upload").run()
    at.file_uploader(key="h_upload").set_value(("hymn.mid", data, "audio/midi")).run()
    assert at.slider(key="h_tempo").value == 96  # the file's, while it plays
    at.radio(key="h_source").set_value("tune").run()
    no_exception(at)
    assert at.slider(key="h_tempo").value == 120  # not the default 80
    assert at.session_state["h_melody"]["tempo"] == 120


def shown_when_drawn_again(widget) -> str:
    """What the browser shows in a widget drawn anew: the value the server sends with it
    (set_value), else the widget's default; it has no value of its own for it."""
    p = widget.proto
    if p.set_value:
        return p.raw_value if "raw_value" in p.DESCRIPTOR.fields_by_name else p.value
    return widget.options[p.default] if hasattr(widget, "options") else p.default


def test_boxes_drawn_again_after_another_source_show_what_was_chosen():
    """Issue 17, item 1: back from the upload, the Tune box showed its first tune while the
    page used the one chosen (the browser then sent the first tune on the next click)."""
    from bachgan.melody import builtin_tune
    from bachgan.midi import to_midi_bytes

    at = app("pages/1_Harmonize.py").run()
    at.selectbox(key="h_tune").select("Frère Jacques").run()
    at.button(key="h_go").click().run()
    at.radio(key="h_source").set_value("text").run()
    at.text_area(key="h_text").input("C4q D4 E4 F4 | G4w").run()
    at.radio(key="h_source").set_value("upload").run()
    tune = builtin_tune("Old Hundredth")
    data = to_midi_bytes(Voices.stack([tune, tune.transpose(-12)]), tempo=96)
    at.file_uploader(key="h_upload").set_value(("hymn.mid", data, "audio/midi")).run()
    next(b for b in at.selectbox if b.label == "Track").set_value(1).run()  # the lower one
    at.radio(key="h_source").set_value("tune").run()
    no_exception(at)
    box = at.selectbox(key="h_tune")
    assert box.value == "Frère Jacques" and shown_when_drawn_again(box) == "Frère Jacques"
    assert at.subheader[0].value.startswith("Frère Jacques")
    at.radio(key="h_source").set_value("text").run()
    notes = at.text_area(key="h_text")
    assert notes.value == shown_when_drawn_again(notes) == "C4q D4 E4 F4 | G4w"
    at.radio(key="h_source").set_value("upload").run()
    track = next(b for b in at.selectbox if b.label == "Track")
    assert track.value == 1 and shown_when_drawn_again(track) == track.format_func(1)


def test_upload_a_midi_file_pick_a_track_and_harmonize():
    from bachgan.melody import builtin_tune
    from bachgan.midi import to_midi_bytes

    tune = builtin_tune("Old Hundredth")
    data = to_midi_bytes(Voices.stack([tune, tune.transpose(-12)]), tempo=96)
    at = app("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("upload").run()
    assert any("1 MB" in c.value for c in at.caption)  # the limits are shown
    at.file_uploader(key="h_upload").set_value(("hymn.mid", data, "audio/midi")).run()
    assert any(sb.label == "Track" for sb in at.selectbox)  # two tracks: a choice
    at.button(key="h_go").click().run()
    no_exception(at)
    assert at.get("plotly_chart") and at.get("audio") and not at.error
    assert at.slider(key="h_tempo").value == 96  # it plays at the file's tempo
    at.radio(key="h_source").set_value("tune").run()  # the file's tempo goes with the file
    assert at.slider(key="h_tempo").value == 80
    at.radio(key="h_source").set_value("upload").run()  # and comes back with it
    assert at.slider(key="h_tempo").value == 96
    at.slider(key="h_tempo").set_value(120)  # until the user sets another
    at.form_submit_button[0].click().run()
    assert at.slider(key="h_tempo").value == 120 and not at.error
    at.radio(key="h_source").set_value("tune").run()
    assert at.slider(key="h_tempo").value == 120  # which stays


def test_an_uploaded_melody_and_its_result_survive_a_visit_to_another_page():
    from bachgan.melody import builtin_tune
    from bachgan.midi import to_midi_bytes

    data = to_midi_bytes(builtin_tune("Old Hundredth"), tempo=96)
    at = app("streamlit_app.py").run()
    at.switch_page("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("upload").run()
    at.file_uploader(key="h_upload").set_value(("hymn.mid", data, "audio/midi")).run()
    at.button(key="h_go").click().run()
    result = at.session_state["h_result"]["key"]
    at.switch_page("pages/3_Explore_latent.py").run()
    at.switch_page("pages/1_Harmonize.py").run()
    no_exception(at)
    assert any("hymn.mid" in c.value and "uploaded earlier" in c.value for c in at.caption)
    assert at.get("audio") and at.session_state["h_result"]["key"] == result
    assert "hymn.mid" in at.subheader[0].value


def test_upload_a_file_that_is_not_midi_shows_an_error():
    at = app("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("upload").run()
    at.file_uploader(key="h_upload").set_value(("notes.mid", b"hello", "audio/midi")).run()
    at.button(key="h_go").click().run()
    no_exception(at)
    assert len(at.error) == 1 and "not a MIDI file" in at.error[0].value
    assert at.button(key="h_go")  # the rest of the page is still there


def test_melody_out_of_the_voice_range_is_moved_and_reported():
    at = app("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("text").run()
    at.text_area(key="h_text").input("C6q D6 E6 F6 | G6w").run()
    at.button(key="h_go").click().run()
    no_exception(at)
    assert any("moved down" in i.value for i in at.info)


def test_harmonize_another_voice():
    at = app("pages/1_Harmonize.py").run()
    at.selectbox(key="h_voice").select(3).run()  # the tune as the bass
    at.button(key="h_go").click().run()
    no_exception(at)
    assert at.get("plotly_chart") and at.get("audio") and not at.error
    result = at.session_state["h_result"]["result"]
    melody = at.session_state["h_melody"]["melody"]
    assert result.voice == 3 and at.session_state["h_melody"]["voice"] == 3
    assert np.array_equal(result.voices.pitches[:, 3], melody.pitches[:, 0])  # in the bass
    assert "variation 0" in at.subheader[0].value


def test_explore_renders_and_interpolates():
    at = app("pages/3_Explore_latent.py").run()
    no_exception(at)
    assert not at.get("audio") and not at.get("plotly_chart")  # nothing made yet
    at.button(key="e_int_go").click().run()
    no_exception(at)
    assert len(at.get("plotly_chart")) == 1  # the interpolation animation
    assert len(at.get("audio")) == 2  # the whole path and the chosen step; no other tab's
    assert not [b for b in at.button if b.key == "e_roll_0"]
    frames = at.session_state["e_int"]["frames"]
    at.selectbox(key="e_int_pick").set_value(len(frames) - 1).run()  # step B on its own
    assert any("Step B on its own" in m.value for m in at.markdown)
    next(b for b in at.button if b.key == f"keep_e_int_{len(frames) - 1}").click().run()
    kept = at.session_state["favourites"][0]
    assert kept["origin"] == "between seed 1 (A) and seed 2 (B), step B", kept["origin"]
    open_tab(at, "☆ Kept")
    assert any("between seed 1 (A) and seed 2 (B)" in m.value for m in at.markdown)
    assert not any("re-rolled bars" in m.value for m in at.markdown)


def open_tab(at: AppTest, label: str) -> AppTest:
    at.session_state["e_tab"] = label  # what clicking the tab does
    return at.run()


def test_explore_reroll_gallery_and_favourites():
    at = open_tab(app("pages/3_Explore_latent.py").run(), "Re-roll")
    # The tab row fits a 360 px phone: 293 of 328 px in Chromium. The old labels (60
    # characters) took 486 px and hid the open tab behind the row's scroll arrow.
    assert sum(len(tab.label) for tab in at.tabs) <= 32, [tab.label for tab in at.tabs]
    at.button(key="e_roll_0").click().run()
    no_exception(at)
    assert any("bar 1 ← seed" in c.value for c in at.caption)
    assert (
        at.session_state["e_bar"]["history"] and "1 re-roll" in at.get("plotly_chart")[0].proto.spec
    )
    assert "1 re-rolls" not in at.get("plotly_chart")[0].proto.spec
    open_tab(at, "Gallery").button(key="e_g_go").click().run()
    no_exception(at)
    assert len(at.get("audio")) == at.slider(key="e_g_n").value  # one player per variation
    for i in range(2):
        [b for b in at.button if b.key and b.key.startswith("keep_g")][i].click().run()
    no_exception(at)
    assert len(at.session_state["favourites"]) == 2
    open_tab(at, "☆ Kept")
    assert any(b.proto.label.startswith("⬇ All favourites") for b in at.get("download_button"))
    assert len(at.get("audio")) == 2
    at.button(key="fav_rm_0").click().run()
    no_exception(at)
    assert len(at.session_state["favourites"]) == 1 and len(at.get("audio")) == 1  # tab stays


def test_explore_random_walk_keeps_a_step():
    at = open_tab(app("pages/3_Explore_latent.py").run(), "Walk")
    at.slider(key="e_w_n").set_value(4).run()
    at.button(key="e_walk_go").click().run()
    no_exception(at)
    walk = at.session_state["e_walk"]
    assert walk["labels"] == ["start", "+0.15", "+0.30", "+0.45"]
    assert len({f.digest() for f in walk["frames"]}) > 1, "the walk goes somewhere"
    assert len(at.get("plotly_chart")) == 1 and len(at.get("audio")) == 2  # path, step
    at.selectbox(key="e_walk_pick").set_value(2).run()
    next(b for b in at.button if b.key == "keep_e_walk_2").click().run()
    assert at.session_state["favourites"][0]["label"].endswith("+0.30")


def test_the_same_result_is_kept_once_and_bars_come_back_after_a_shorter_tune():
    at = open_tab(app("pages/3_Explore_latent.py").run(), "Gallery")
    at.button(key="e_g_go").click().run()
    for _ in range(2):
        next(b for b in at.button if b.key and b.key.startswith("keep_g")).click().run()
    assert len(at.session_state["favourites"]) == 1
    assert any("already in your favourites" in t.value for t in at.toast)
    at.slider(key="e_bars").set_value(8).run()
    at.selectbox(key="e_tune").set_value("Twinkle, Twinkle, Little Star").run()  # 4 bars
    assert at.slider(key="e_bars").value == 4
    at.selectbox(key="e_tune").set_value("Old Hundredth").run()
    assert at.slider(key="e_bars").value == 8


def test_favourites_stop_at_their_limit():
    at = open_tab(app("pages/3_Explore_latent.py").run(), "Gallery")
    at.button(key="e_g_go").click().run()
    full = [{"label": f"f{i}", "seed": i, "z": [], "midi": b""} for i in range(24)]
    at.session_state["favourites"] = list(full)
    next(b for b in at.button if b.key and b.key.startswith("keep_g")).click().run()
    no_exception(at)
    assert at.session_state["favourites"] == full
    assert any("24 favourites" in t.value for t in at.toast)


def test_explore_plays_a_melody_from_harmonize_at_its_tempo():
    at = app("streamlit_app.py").run()
    at.switch_page("pages/1_Harmonize.py").run()
    at.session_state["h_tempo"] = 132
    at.button(key="h_go").click().run()
    at.switch_page("pages/3_Explore_latent.py").run()
    no_exception(at)
    assert at.selectbox(key="e_tune").value.startswith("From Harmonize")
    assert at.slider(key="e_tempo").value == 132


# ---------------------------------------------------------------- figures


def test_pianoroll_figure_hover_names_notes_and_marks_the_given_voice():
    melody = Voices.from_pitches([61] * 4 + [-1] * 12 + [64] * 16)  # C#4 for a beat
    v = Voices.stack([melody.transpose(12), melody, melody.transpose(-12), melody.transpose(-24)])
    fig = plots.pianoroll_figure(v, given_voice=1)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"Soprano", "Alto (given)", "Tenor", "Bass"}
    alto = by_name["Alto (given)"]
    assert alto.hovertext[0] == "Alto C#4, bar 1 beat 1, 1 beat"
    assert alto.hovertext[1] == "Alto E4, bar 2 beat 1, 4 beats"
    assert alto.marker.line.width > by_name["Soprano"].marker.line.width
    assert len(fig.layout.shapes) == 3  # bar lines at 0, 1 and 2 bars


def test_interpolation_figure_has_a_frame_per_step():
    v = Voices.stack([Voices.from_pitches([72] * 32)] * 4)
    fig = plots.interpolation_figure([v, v.transpose(1), v.transpose(2)], ["A", "50%", "B"])
    assert [f.name for f in fig.frames] == ["A", "50%", "B"]
    assert len(fig.layout.sliders[0].steps) == 3


def test_metrics_table_without_bach_says_so():
    rows = plots.metrics_table({"chord_tone_rate": 0.9}, None)
    assert rows[0]["Bach"] == "…" and rows[0]["meets target"] == "✓ yes"
    assert rows[1]["this result"] == "n/a"
    # st.table reads cells as Markdown: no target may start a quote (">")
    assert rows[0]["target"] == "≥ 0.80" and not any(r["target"].startswith(">") for r in rows)


def test_choices_survive_a_visit_to_another_page():
    at = app("streamlit_app.py").run()
    at.switch_page("pages/1_Harmonize.py").run()
    at.selectbox(key="h_tune").select("Old Hundredth").run()
    at.button(key="h_go").click().run()
    at.switch_page("pages/3_Explore_latent.py").run()
    no_exception(at)
    # Explore offers the melody just harmonized, and starts from it.
    assert at.selectbox(key="e_tune").value == "From Harmonize: Old Hundredth"
    at.switch_page("pages/1_Harmonize.py").run()
    no_exception(at)
    assert at.selectbox(key="h_tune").value == "Old Hundredth"
    assert at.get("audio")  # the result is still there


def test_favourites_zip_holds_midi_files_and_seeds():
    import io
    import json
    import zipfile

    from app_state import favourites_zip

    favs = [{"label": "Old Hundredth, seed 3", "seed": 3, "z": [[0.5]], "midi": b"MThd..."}]
    with zipfile.ZipFile(io.BytesIO(favourites_zip(favs))) as z:
        assert z.namelist() == ["01-old-hundredth-seed-3.mid", "favourites.json"]
        index = json.loads(z.read("favourites.json"))
    assert index[0]["seed"] == 3 and "midi" not in index[0]


def test_a_newer_save_of_a_run_harmonizes_again_and_the_demo_uses_the_shipped_model(
    env, tiny_export
):
    import os
    import shutil

    from bachgan.export import CARD, resolve_export
    from bachgan.sampling import SHIPPED_DIR

    shutil.copytree(tiny_export, env / "tiny")
    at = app("streamlit_app.py").run()
    at.switch_page("pages/1_Harmonize.py").run()
    at.selectbox(key="h_model").set_value("tiny").run()
    at.button(key="h_go").click().run()
    no_exception(at)
    first = at.session_state["h_result"]["key"]
    card = resolve_export(env / "tiny") / CARD  # the run saves again, as a resumed run does
    os.utime(card, (card.stat().st_mtime + 60,) * 2)
    at.run()
    no_exception(at)
    assert at.session_state["h_result"]["key"] != first  # not the older model's result

    at.switch_page("streamlit_app.py").run()
    at.button[0].click().run()  # "Harmonize a tune now"
    no_exception(at)
    path = at.session_state["h_result"]["key"][0][0]
    assert resolve_export(SHIPPED_DIR) == resolve_export(path) and not at.error


def test_a_chosen_run_that_disappears_says_so_and_the_shipped_model_takes_over(env, tiny_export):
    import shutil

    shutil.copytree(tiny_export, env / "tiny")
    at = app("streamlit_app.py").run()
    at.switch_page("pages/1_Harmonize.py").run()
    at.selectbox(key="h_model").set_value("tiny").run()
    at.button(key="h_go").click().run()
    assert any("run 'tiny'" in c.value for c in at.caption)  # the result says which model
    shutil.rmtree(env / "tiny")
    at.run()
    no_exception(at)
    assert any("'tiny' is no longer available" in w.value for w in at.warning)
    assert at.selectbox(key="h_model").value == "shipped"
    assert any("By the shipped model" in c.value for c in at.caption)
    at.run()
    assert not at.warning  # said once


def test_a_fallback_sound_is_not_kept_in_the_cache(monkeypatch):
    """One FluidSynth failure must not make a piece play as sine waves for everyone after."""
    import app_state
    from bachgan import audio

    made = []

    def render_wav(midi, sample_rate=audio.SAMPLE_RATE, mono=False):
        made.append(len(made) == 0)  # the first render falls back, the next ones do not
        return audio.Audio(
            b"RIFF", sample_rate, "fallback: sine waves (x)" if made[-1] else "fs", made[-1]
        )

    monkeypatch.setattr(audio, "render_wav", render_wav)
    midi = b"MThd-a-piece-only-this-test-renders"
    assert app_state._rendered(midi, True)[1] is True  # the fallback, shown once
    assert app_state._rendered(midi, True)[1] is False  # rendered again, for real
    assert app_state._rendered(midi, True)[1] is False and made == [True, False]  # now cached


def test_explore_keeps_a_setting_that_led_to_an_error_across_pages(env, tiny_export):
    import shutil

    from bachgan.export import resolve_export

    shutil.copytree(tiny_export, env / "broken")
    (resolve_export(env / "broken") / "generator.weights.h5").write_bytes(b"not hdf5")
    at = app("streamlit_app.py").run()
    at.switch_page("pages/3_Explore_latent.py").run()
    at.selectbox(key="e_model").set_value("broken").run()
    at.selectbox(key="e_voice").set_value(3).run()  # changed while the page shows an error
    assert any("Could not load" in e.value for e in at.error)
    at.switch_page("pages/1_Harmonize.py").run()
    at.switch_page("pages/3_Explore_latent.py").run()
    no_exception(at)
    assert at.selectbox(key="e_voice").value == 3  # as the person left it


def test_harmonize_rerolls_one_bar_keeps_the_rest_and_undoes():
    """#17 item 11: a new variation of one bar changes that bar's latent only; Undo brings
    back the result before it, note for note."""
    at = app("pages/1_Harmonize.py").run()
    at.button(key="h_go").click().run()
    first = at.session_state["h_result"]["result"]
    assert at.button(key="h_undo").disabled  # nothing to undo yet
    at.selectbox(key="h_bar").set_value(2).run()
    at.button(key="h_reroll").click().run()
    no_exception(at)
    second = at.session_state["h_result"]["result"]
    rows_changed = [b for b in range(len(first.z)) if not np.allclose(first.z[b], second.z[b])]
    assert rows_changed == [2]
    assert second.voices != first.voices and "1 bar change" in at.subheader[0].value
    assert any("bar 3 ← seed" in c.value for c in at.caption)
    assert at.get("audio")
    at.button(key="h_undo").click().run()
    no_exception(at)
    back = at.session_state["h_result"]["result"]
    assert back.voices == first.voices and "bar change" not in at.subheader[0].value
    at.button(key="h_reroll").click().run()
    assert len(at.session_state["h_rerolls"]["history"]) == 1
    at.number_input(key="h_seed").set_value(7).run()  # another seed starts afresh
    assert not at.session_state["h_rerolls"]["history"]


def test_typed_fermatas_are_the_phrase_ends_of_the_harmony():
    at = app("pages/1_Harmonize.py").run()
    at.radio(key="h_source").set_value("text").run()
    at.text_area(key="h_text").input("C5q D5 E5 F5 | G5h^ E5h | D5q E5 F5 D5 | C5w^").run()
    at.button(key="h_go").click().run()
    no_exception(at)
    ends = at.session_state["h_result"]["result"].context.phrase_ends
    assert ends.tolist() == [False] * 16 + [True] * 8 + [False] * 24 + [True] * 16


def test_a_result_is_described_in_musical_words_and_the_numbers_wait_in_an_expander():
    """Issue 17, item 3: key, cadences, ranges and what changed, in words; the tables and
    the clean-up's figures behind 'Statistics for the curious'."""
    at = app("pages/1_Harmonize.py").run()
    at.selectbox(key="h_tune").select("Old Hundredth").run()
    at.button(key="h_go").click().run()
    no_exception(at)
    words = "\n".join(m.value for m in at.markdown)
    assert "Key: G major." in words
    assert "phrases close at bar" in words and "cadence" in words
    assert "Ranges: soprano" in words and "(your melody)" in words
    assert "previous variation" not in words  # nothing to compare with yet
    stats = next(e for e in at.expander if e.label.startswith("📊 Statistics for the curious"))
    assert stats.table and any(c.value.startswith("Clean-up:") for c in stats.caption)
    assert not any("Tidied up" in c.value for c in at.caption)
    labels = [s.label for s in at.slider] + [n.label for n in at.number_input]
    assert "How adventurous" in labels and "Variation number" in labels
    assert not any("truncation" in label.lower() for label in labels)  # only in the help

    next(b for b in at.button if "Another variation" in b.label).click().run()
    no_exception(at)
    words = "\n".join(m.value for m in at.markdown)
    assert "Against the previous variation" in words, words
