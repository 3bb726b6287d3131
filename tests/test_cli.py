"""The command line as a user runs it (subprocesses, real model and files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest

from bachgan.sampling import SHIPPED_DIR

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CARD = json.loads((SHIPPED_DIR / "model.json").read_text())


def bachgan(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bachgan", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_info_prints_seed_parameter_counts():
    out = bachgan("info", "--preset", "seed")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["generator_params"] == 8_273_540 and info["critic_params"] == 2_766_785
    assert info["config"]["z_channels"] == 512


def test_info_on_the_shipped_checkpoint():
    out = bachgan("info", "--checkpoint", SHIPPED_DIR)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["config"]["name"] == SHIPPED_CARD["preset"]["name"]
    assert info["checkpoint"]["iteration"] == SHIPPED_CARD["iteration"] > 0
    assert info["config"]["condition_voices"] == [0, 1, 2, 3], "the app offers all four voices"


def test_harmonize_text_and_midi_with_wav_and_musicxml(tmp_path):
    txt = tmp_path / "tune.txt"
    txt.write_text("G4q G4 A4 B4 | C5h B4")
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0, name="Flute")
    for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69]):
        inst.notes.append(pretty_midi.Note(90, p, i * 0.5, i * 0.5 + 0.5))
    pm.instruments.append(inst)
    mid = tmp_path / "flute.mid"
    pm.write(str(mid))
    out = bachgan(
        "harmonize", txt, mid, "--out-dir", tmp_path / "out", "--wav", "--musicxml", "--seed", "4"
    )
    assert out.returncode == 0, out.stderr
    umask = os.umask(0)
    os.umask(umask)
    for stem in ("tune", "flute"):
        for ext in (".mid", ".wav", ".musicxml"):
            written = (tmp_path / "out" / f"{stem}{ext}").stat()
            assert written.st_size > 100
            assert written.st_mode & 0o777 == 0o666 & ~umask, "written atomically, not 0600"
    result = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "tune.mid"))
    assert [i.name for i in result.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]


def test_harmonize_never_writes_over_an_input(tmp_path):
    """Outputs go beside inputs with the same stem: tune.txt must not replace tune.mid, and
    a melody harmonized into its own folder must not replace itself."""
    (tmp_path / "tune.txt").write_bytes(b"\xef\xbb\xbfG4q G4 A4 B4 | C5h B4")  # with a BOM
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0, name="Flute")
    for i, p in enumerate([72, 74, 76, 77, 79]):
        inst.notes.append(pretty_midi.Note(90, p, i * 0.5, i * 0.5 + 0.5))
    pm.instruments.append(inst)
    mid = tmp_path / "tune.mid"
    pm.write(str(mid))
    before = mid.read_bytes()
    out = bachgan("harmonize", tmp_path / "tune.txt", mid, "--out-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    assert mid.read_bytes() == before  # the user's file is untouched
    from_text, from_midi = (pretty_midi.PrettyMIDI(str(tmp_path / f"tune-{n}.mid")) for n in (2, 3))
    assert [n.pitch for n in from_text.instruments[0].notes][:2] == [67, 67]  # G4 G4
    assert [n.pitch for n in from_midi.instruments[0].notes] == [72, 74, 76, 77, 79]


def test_bad_tempo_and_unloadable_model_get_one_line_and_status_2(tmp_path):
    (tmp_path / "a.txt").write_text("C5w")
    for tempo in ("0", "-80", "nan", "5000", "fast"):
        out = bachgan("harmonize", tmp_path / "a.txt", "--out-dir", tmp_path, f"--tempo={tempo}")
        assert out.returncode == 2 and "20 to 400 BPM" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    out = bachgan("evaluate", "--checkpoint", tmp_path / "nothing-here", "--windows", "1")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot load the model" in out.stderr


def test_evaluate_json_on_a_few_windows():
    out = bachgan("evaluate", "--windows", "4", "--json", timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    rows = result["rows"]
    assert {"model/all", "bach/all", "random", "bach_shuffled_lower"} <= set(rows)
    assert 0.0 <= rows["model/all"]["chord_tone_rate"] <= 1.0
    assert rows["random"]["onsets_per_bar_lower"] > rows["bach/all"]["onsets_per_bar_lower"]


@pytest.mark.slow
def test_evaluate_whole_writes_tables_and_json(tiny_export, tmp_path):
    """Whole chorales of the valid split: the tables on stdout, the JSON in --out."""
    out_file = tmp_path / "whole.json"
    out = bachgan(
        "evaluate", "--whole", "--checkpoint", tiny_export, "--chorales", "4", "--out", out_file
    )
    assert out.returncode == 0, out.stderr
    assert "### soprano given: 4 valid chorales, whole" in out.stdout
    result = json.loads(out_file.read_text())
    rows = result["by_voice"]["soprano"]["rows"]
    assert {"Bach", "Bach vs Bach", "mismatched", "model", "model raw", "noise + decoder"} <= set(
        rows
    )
    assert rows["Bach"]["mode_kept"] == 1.0 and rows["model"]["pieces"] == 4


def test_evaluate_compares_several_models_in_one_table(tiny_export):
    shipped = SHIPPED_DIR
    out = bachgan(
        "evaluate",
        "--checkpoint",
        shipped,
        "--checkpoint",
        tiny_export,
        "--windows",
        "2",
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    table = out.stdout.split("All models")[1]
    header = table.splitlines()[2]
    shipped_label = (
        f"{shipped.name} ({SHIPPED_CARD['preset']['name']}, {SHIPPED_CARD['iteration']:,} it.)"
    )
    labels = (shipped_label, "tiny (tiny, 5 it.)", "Bach (test split)")
    for column in labels:
        assert column in header
    chord = next(line for line in table.splitlines() if line.startswith("| chord-tone"))
    assert len(chord.split("|")) == len(header.split("|")), "a figure in every column"


def test_bad_train_arguments_are_refused_without_traceback(tmp_path):
    out = bachgan("train", "--run-dir", tmp_path / "r", "--iterations", "0")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    out = bachgan("train", "--run-dir", tmp_path / "r", "--learning-rate", "-1")
    assert out.returncode == 2 and "positive" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text('{"preset": {"name": "tiny"}}')
    out = bachgan("train", "--run-dir", tmp_path / "r", "--resume", "--learning-rate", "1e-4")
    assert out.returncode == 2 and "keeps its settings" in out.stderr
    args = ["--preset", "cpu", "--seed", "3", "--data", "x.json", "--jit", "--strategy", "mirrored"]
    out = bachgan("train", "--run-dir", tmp_path / "r", "--resume", *args)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
    for given in ("--preset cpu", "--seed 3", "--data x.json", "--jit", "--strategy mirrored"):
        assert given in out.stderr
    out = bachgan("train", "--run-dir", tmp_path / "r", "--condition-voices", "viola")
    assert out.returncode == 2 and "viola" in out.stderr and "Traceback" not in out.stderr


def test_out_of_range_seeds_are_refused_before_anything_is_written(tmp_path):
    (tmp_path / "a.txt").write_text("C5w")
    # 2**31 is one past presets.MAX_SEED, the bound the app uses too
    for seed in ("-1", str(2**31), "9223372036854775808", "x"):
        for args in (
            ("train", "--run-dir", tmp_path / "r", "--preset", "tiny"),
            ("harmonize", tmp_path / "a.txt", "--out-dir", tmp_path / "o"),
            ("evaluate", "--windows", "1"),
        ):
            out = bachgan(*args, "--seed", seed)
            assert out.returncode == 2 and "Traceback" not in out.stderr, (args, out.stderr)
            assert "--seed" in out.stderr.splitlines()[-1], out.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_ship_with_a_missing_run_or_compare_says_so_in_one_line(tmp_path, tiny_export):
    for args in (
        ("--run-dir", tmp_path / "nonexistent"),
        ("--run-dir", tiny_export, "--compare", tmp_path / "typo"),
    ):
        out = bachgan("ship", *args, "--dest", tmp_path / "dest", "--windows", "2")
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert len(out.stderr.splitlines()) == 1 and "cannot load the model" in out.stderr
    assert not (tmp_path / "dest").exists()
    for args in ((), ("--run-dir", tiny_export, "--reevaluate")):  # one of the two, not both
        out = bachgan("ship", *args, "--dest", tmp_path / "dest")
        assert out.returncode == 2 and "--reevaluate" in out.stderr, out.stderr
    out = bachgan("ship", "--reevaluate", "--dest", tmp_path / "nothing")
    assert out.returncode == 2 and "not a shipped model" in out.stderr, out.stderr


def test_unusable_paths_get_one_line_and_status_2(tmp_path):
    """Missing files, folders given as files and files given as folders, in every subcommand
    that takes a path (ship: see test_ship_with_a_missing_run...; read-only folders: see
    test_reliability)."""
    (tmp_path / "plain").write_text("x")
    (tmp_path / "bad.json").write_text('{"no": "splits"}')
    cases = [
        (("info", "--checkpoint", tmp_path / "nonexistent"), "cannot load the model"),
        (("info", "--checkpoint", tmp_path / "plain"), "cannot load the model"),
        (("prepare-data", "--source", tmp_path / "nonexistent.json"), "No such file"),
        (("prepare-data", "--source", tmp_path), "Is a directory"),
        (("prepare-data", "--source", tmp_path / "bad.json"), "as JSB chorales"),
        (("train", "--run-dir", tmp_path / "r", "--preset", "tiny", "--data", tmp_path), "Is a"),
        (("train", "--run-dir", tmp_path / "plain", "--preset", "tiny"), "cannot write to"),
    ]
    for args, words in cases:
        out = bachgan(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (args, out.stderr)
        assert len(out.stderr.splitlines()) == 1 and words in out.stderr, (args, out.stderr)
    assert not (tmp_path / "r").exists(), "a bad --data leaves no run folder behind"
