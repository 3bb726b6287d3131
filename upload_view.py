"""What the Harmonize page says about an uploaded MIDI file: its size, the limits, why it
was refused.

The limits themselves are `bachgan.melody.LIMITS`, which the library enforces; this module
only words them, so the uploader, the caption and the errors all state the same number.
No Streamlit here: the tests call these directly.
"""

from __future__ import annotations

from bachgan.melody import LIMITS

MAX_BYTES = LIMITS["max_upload_bytes"]
# st.file_uploader(max_upload_size=...) takes whole megabytes, which the browser counts as
# 1,000,000 bytes (1,048,576 on Windows, where a file between the two reaches the library and
# gets its "too large" message). A test checks that this is the library's limit exactly.
UPLOADER_MB = max(1, round(MAX_BYTES / 1_000_000))


def human_size(n: int) -> str:
    """A file size as people read it: '263 bytes', '1.23 kB', '1 MB' (decimal units, as the
    uploader counts them), not Streamlit's '263.0B'."""
    if n < 1000:
        return f"{n:,} byte" + ("" if n == 1 else "s")
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        text = f"{n / scale:.3g}"
        if float(text) < 1000 or unit == "GB":
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def limits_caption() -> str:
    return (
        f"Limits: a file up to {human_size(MAX_BYTES)} (the box marks a larger one in red and "
        f"does not use it), at most {LIMITS['max_bars']} bars of 4/4 and "
        f"{LIMITS['max_notes']:,} notes, a tempo of {LIMITS['min_tempo_bpm']:g}-"
        f"{LIMITS['max_tempo_bpm']:g} BPM. BachGAN takes the top line of the melody's track: "
        "one named like a melody, else the highest part."
    )


def in_use(name: str, size: int, earlier: bool = False) -> str:
    """The caption naming the file that is harmonized."""
    when = ", uploaded earlier. Choose a file to replace it." if earlier else "."
    return f"Using **{name}** ({human_size(size)}){when}"


def refused(name: str, size: int, why: str) -> str:
    """The error for a file the library would not read: which file, and the library's reason
    (too large, not a MIDI file, no notes...)."""
    return f"**{name}** ({human_size(size)}) could not be used. {why}"
