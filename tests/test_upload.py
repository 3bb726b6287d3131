"""Uploading a MIDI file on Harmonize (issue 17, item 8): one size limit, stated the same way
by the caption and the uploader; a refused file named with its size and the reason; sizes
in words people read ("263 bytes", not "263.0B")."""

from __future__ import annotations

import re
from pathlib import Path

import mido
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import upload_view  # noqa: E402
from bachgan.melody import LIMITS, builtin_tune  # noqa: E402
from bachgan.midi import to_midi_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def harmonize_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/1_Harmonize.py"), default_timeout=120).run()
    at.radio(key="h_source").set_value("upload").run()
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    return at.file_uploader(key="h_upload").set_value((name, data, "audio/midi")).run()


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (263, "263 bytes"),
        (999, "999 bytes"),
        (1000, "1 kB"),
        (1234, "1.23 kB"),
        (263_456, "263 kB"),
        (999_999, "1 MB"),  # not "1e+03 kB"
        (1_000_000, "1 MB"),
        (2_500_000, "2.5 MB"),
    ],
)
def test_sizes_read_as_people_write_them(n, text):
    assert upload_view.human_size(n) == text


def test_the_size_limit_is_the_librarys_in_the_caption_the_uploader_and_the_server():
    limit = LIMITS["max_upload_bytes"]
    assert upload_view.UPLOADER_MB * 1_000_000 == limit  # the box applies the library's limit
    config = (ROOT / ".streamlit/config.toml").read_text()  # (tomllib is Python 3.11+)
    server_mb = int(re.search(r"^maxUploadSize = (\d+)$", config, re.M)[1])
    assert server_mb >= upload_view.UPLOADER_MB  # the server lets in what the box accepts
    at = harmonize_page()
    box = at.file_uploader(key="h_upload")
    assert box.proto.max_upload_size_mb == upload_view.UPLOADER_MB  # "1MB per file"
    assert not box.proto.type  # any file reaches the library, which says what is wrong with it
    caption = next(c.value for c in at.caption if c.value.startswith("Limits:"))
    assert f"a file up to {upload_view.human_size(limit)} " in caption and "1 MB" in caption


def test_the_file_in_use_is_named_with_its_size_in_words():
    data = to_midi_bytes(builtin_tune("Old Hundredth"), tempo=96)
    at = upload(harmonize_page(), "hymn.mid", data)
    assert not at.exception and not at.error
    size = upload_view.human_size(len(data))
    assert size.endswith(" bytes") and "." not in size  # a few hundred bytes
    assert any(c.value == f"Using **hymn.mid** ({size})." for c in at.caption)


def _no_notes() -> bytes:
    import io

    buf = io.BytesIO()
    mido.MidiFile(tracks=[mido.MidiTrack([mido.MetaMessage("track_name", name="empty")])]).save(
        file=buf
    )
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, data, why",
    [
        ("notes.txt", b"hello", "This is not a MIDI file"),
        ("empty.mid", _no_notes(), "This MIDI file has no notes"),
        ("huge.mid", b"MThd" + bytes(LIMITS["max_upload_bytes"]), "The file is too large"),
    ],
    ids=["not MIDI", "no notes", "too large"],
)
def test_a_refused_file_is_named_with_its_size_and_the_reason(name, data, why):
    """After a good file: the refused one is named, with its size and why, and no result
    of the earlier file stays under the error."""
    at = harmonize_page()
    upload(at, "hymn.mid", to_midi_bytes(builtin_tune("Old Hundredth"), tempo=96))
    at.button(key="h_go").click().run()
    assert at.get("audio")
    upload(at, name, data)
    assert not at.exception
    (error,) = at.error
    size = upload_view.human_size(len(data))
    assert error.value.startswith(f"**{name}** ({size}) could not be used. {why}"), error.value
    assert not at.get("audio")
