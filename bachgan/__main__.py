"""Command line: python -m bachgan {prepare-data,train,harmonize,evaluate,ship,info,bench}.

Input errors print one line per bad input on stderr and exit with status 2; the
other inputs are still processed. No traceback for input errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bachgan.presets import PRECISIONS, PRESETS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A GPU's memory as needed, not all at once: the app's process may hold the same GPU.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

INPUT_ERROR = 2
OUTPUT_SUFFIXES = (".mid", ".wav", ".musicxml")


def _voices_arg(text: str) -> tuple[int, ...]:
    from bachgan.voices import voice_index

    try:
        return tuple(sorted({voice_index(v.strip()) for v in text.split(",") if v.strip()}))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return x


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _seed(text: str) -> int:
    """--seed: 0 to presets.MAX_SEED, checked here so a bad seed fails before anything is
    written or computed."""
    from bachgan.presets import MAX_SEED

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= n <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text}: give 0 to {MAX_SEED}")
    return n


def cmd_prepare_data(args) -> int:
    from bachgan.data import cache_path
    from bachgan.train import open_corpus

    try:
        corpus = open_corpus(args.source, rebuild=args.rebuild)
    except ValueError as err:
        print(f"bachgan prepare-data: {err}", file=sys.stderr)
        return INPUT_ERROR
    print(
        json.dumps(
            {
                "source": corpus.source,
                "cache": str(cache_path()) if args.source == "music21" else None,
                "chorales": {k: len(v) for k, v in corpus.splits.items()},
                "windows": {k: len(corpus.windows(k)) for k in corpus.splits},
                "skipped": corpus.skipped,
            },
            indent=1,
        )
    )
    return 0


def cmd_train(args) -> int:
    from bachgan.train import DiskFull, TrainingBusy, train

    overrides = {"condition_voices": args.condition_voices} if args.condition_voices else {}
    if args.learning_rate:
        overrides["learning_rate"] = args.learning_rate
    try:
        status = train(
            args.run_dir,
            preset=args.preset,
            iterations=args.iterations,
            resume=args.resume,
            seed=args.seed,
            strategy=args.strategy,
            data=args.data,
            jit=args.jit,
            precision=args.precision,
            minutes=0.0 if args.no_budget else args.minutes,  # 0: no budget
            **overrides,
        )
    except (TrainingBusy, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"bachgan train: {err}", file=sys.stderr)
        return INPUT_ERROR
    except DiskFull as err:  # status.json says the same; no traceback for a full disk
        print(f"bachgan train: {err}", file=sys.stderr)
        return 1
    print(json.dumps(status))
    return 0


def cmd_info(args) -> int:
    from bachgan.model import build_critic, build_generator, count_params
    from bachgan.presets import get_preset

    out = {}
    if args.checkpoint:
        from bachgan.export import load_generator

        try:
            gen, preset, card = load_generator(args.checkpoint)
        except Exception as err:  # as in harmonize: one line, not a traceback
            print(f"bachgan info: cannot load the model: {err}", file=sys.stderr)
            return INPUT_ERROR
        out["checkpoint"] = card
    else:
        preset = get_preset(args.preset)
        gen = build_generator(preset)
    out["config"] = preset.to_dict()
    out["generator_params"] = count_params(gen)
    out["critic_params"] = count_params(build_critic(preset))
    print(json.dumps(out, indent=1))
    return 0


def _tempo(text: str) -> float:
    """--tempo: a number of BPM within the limits every importer accepts."""
    from bachgan.melody import MAX_TEMPO, MIN_TEMPO

    try:
        bpm = float(text)
    except ValueError:
        bpm = float("nan")
    if not MIN_TEMPO <= bpm <= MAX_TEMPO:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text!r}: give {MIN_TEMPO:g} to {MAX_TEMPO:g} BPM")
    return bpm


def read_melody(path: Path, voice: str):
    """A .mid/.midi file or a .txt file in the text notation -> (melody, report)."""
    from bachgan.melody import MAX_UPLOAD_BYTES, MelodyError, melody_from_midi, melody_from_text

    suffix = path.suffix.lower()
    if suffix not in (".mid", ".midi", ".txt"):
        raise MelodyError("expected a .mid, .midi or .txt file")
    try:
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise MelodyError(f"the file is larger than {MAX_UPLOAD_BYTES:,} bytes")
        data = path.read_bytes()
    except OSError as err:
        raise MelodyError(f"cannot read the file ({err.strerror or err})") from None
    if suffix == ".txt":
        # utf-8-sig: Windows editors may start the file with an invisible byte-order mark
        return melody_from_text(data.decode("utf-8-sig", errors="replace"), voice)
    return melody_from_midi(data, voice)


def cmd_harmonize(args) -> int:
    from bachgan import audio, midi
    from bachgan.melody import MelodyError
    from bachgan.runs_io import atomic_write_bytes
    from bachgan.sampling import Harmonizer

    try:
        harmonizer = Harmonizer(args.checkpoint)
    except Exception as err:  # a damaged or crafted export fails in many ways; one line each
        print(f"bachgan harmonize: cannot load the model: {err}", file=sys.stderr)
        return INPUT_ERROR
    out_dir = Path(args.out_dir)
    umask = os.umask(0)  # outputs get the usual permissions, not a temporary file's 0600
    os.umask(umask)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file in the way, a read-only disk: no output can be written
        why = "it is a file, not a folder" if isinstance(err, FileExistsError) else err.strerror
        print(f"bachgan harmonize: cannot use {out_dir}: {why or err}", file=sys.stderr)
        return INPUT_ERROR
    failed = 0
    used: set[str] = set()  # output names taken in this call: a.mid and a.txt both give 'a'
    inputs = {Path(name).resolve() for name in args.melodies}  # never written over
    for name in args.melodies:
        path = Path(name)
        try:
            melody, report = read_melody(path, args.voice)
            result = harmonizer.harmonize(melody, args.voice, seed=args.seed, raw=args.raw)
        except MelodyError as err:
            print(f"{path}: {err}", file=sys.stderr)
            failed += 1
            continue
        base, n = path.stem, 1  # not with_suffix(): 'my.song' would become 'my.mid'
        while base in used or any(
            (out_dir / f"{base}{ext}").resolve() in inputs for ext in OUTPUT_SUFFIXES
        ):
            n += 1
            base = f"{path.stem}-{n}"
        used.add(base)
        mid_path, wav_path, xml_path = (out_dir / f"{base}{ext}" for ext in OUTPUT_SUFFIXES)
        pm_bytes = midi.to_midi_bytes(result.voices, tempo=args.tempo)
        outputs = [(mid_path, pm_bytes, "")]
        if args.wav:
            wav = audio.render_wav(pm_bytes)
            outputs.append((wav_path, wav.wav, " (fallback synth)" if wav.is_fallback else ""))
        if args.musicxml:
            xml = midi.to_musicxml(result.voices, args.tempo, title=path.stem)
            outputs.append((xml_path, xml, ""))
        written = []
        for target, data, note in outputs:
            try:  # atomic: a full disk leaves no truncated file behind
                atomic_write_bytes(target, data, mode=0o666 & ~umask)
            except OSError as err:  # the folder fails every input alike: stop here
                print(f"{path}: cannot write {target}: {err.strerror or err}", file=sys.stderr)
                return INPUT_ERROR
            written.append(f"{target}{note}")
        print(
            f"{path}: {', '.join(written)}; import: {report}; clean-up changed "
            f"{result.cleanup.get('changed_share', 0):.0%} of generated steps"
        )
    return INPUT_ERROR if failed else 0


def _evaluate_whole(harmonizer, args) -> dict:
    """Whole chorales of a split, each harmonized whole (`bachgan.whole_eval`): the tables,
    or the JSON with --json; --out also writes the JSON to a file."""
    from bachgan import whole_eval

    voices = (0, 1, 2, 3) if args.all_voices else (0,)
    voices = [v for v in voices if v in harmonizer.preset.condition_voices]

    def progress(done, total):
        print(f"\r{done}/{total} pieces", end="", file=sys.stderr, flush=True)

    result = whole_eval.evaluate_whole(
        harmonizer,
        split=args.split,
        voices=voices,
        seed=args.seed,
        progress=progress,
        max_chorales=args.chorales,
    )
    print(file=sys.stderr)
    if args.out:
        whole_eval.write_json(result, args.out)
    if args.json:
        print(json.dumps(whole_eval.jsonable(result), indent=1))
    else:
        print(whole_eval.tables(result))
    return result


def cmd_evaluate(args) -> int:
    from bachgan.evaluate import comparison_table, evaluate, table
    from bachgan.sampling import Harmonizer

    results = []
    for path in args.checkpoint or [None]:
        try:
            harmonizer = Harmonizer(path)
        except Exception as err:  # as in harmonize: one line, not a traceback
            print(f"bachgan evaluate: cannot load the model {path or ''}: {err}", file=sys.stderr)
            return INPUT_ERROR
        if args.whole:
            results.append(_evaluate_whole(harmonizer, args))
        else:
            results.append(evaluate(harmonizer, max_windows=args.windows, seed=args.seed))
    if args.whole:
        return 0
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=1))
        return 0
    for r in results:
        m = r["model"]
        print(
            f"model {m['path']} (preset {m['preset']}, iteration {m['iteration']}), "
            f"{r['windows']} held-out windows per voice + {len(r['tunes'])} tunes\n"
        )
        print(table(r) + "\n")
    if len(results) > 1:
        print("All models (each averaged over the voices it takes as given):\n")
        print(comparison_table(results))
    return 0


def cmd_ship(args) -> int:
    from bachgan.card import SHIPPED, ShipInputError, reevaluate, ship

    dest = Path(args.dest) if args.dest else SHIPPED
    if args.reevaluate == bool(args.run_dir):
        print("bachgan ship: give --run-dir, or --reevaluate (not both)", file=sys.stderr)
        return INPUT_ERROR
    try:
        if args.reevaluate:
            reevaluate(dest, args.windows)
        else:
            ship(
                args.run_dir,
                dest,
                args.windows,
                compare=args.compare or (),
                iteration=args.iteration,
            )
    except ShipInputError as err:  # found before anything was written
        for line in err.lines:
            print(f"bachgan ship: {line}", file=sys.stderr)
        return INPUT_ERROR
    except OSError as err:  # e.g. a read-only --dest; the model there is left as it was
        print(f"bachgan ship: cannot write {dest}: {err.strerror or err}", file=sys.stderr)
        return INPUT_ERROR
    print((dest / "MODEL_CARD.md").read_text())
    return 0


def cmd_bench(args) -> int:
    from bachgan.bench import run_bench

    if args.from_json:
        results = []
        for path in args.from_json:
            try:
                results.append(json.loads(Path(path).read_text()))
            except (OSError, ValueError) as err:
                print(f"bachgan bench: cannot read {path}: {err}", file=sys.stderr)
                return INPUT_ERROR
    else:
        results = [
            run_bench(preset=args.preset, iterations=args.iterations, checkpoint=args.checkpoint)
        ]
    if args.markdown:
        from bachgan.bench import markdown

        try:
            print(markdown(results))
        except (KeyError, TypeError, AttributeError) as err:
            print(f"bachgan bench: not a bench --json result (missing {err})", file=sys.stderr)
            return INPUT_ERROR
    else:
        for result in results:
            print(json.dumps(result, indent=None if args.json else 1))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bachgan", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare-data", help="parse and cache the chorales")
    p.add_argument("--source", default="music21", help="'music21' or a JSB .json/.npz path")
    p.add_argument("--rebuild", action="store_true", help="ignore the cache and parse again")
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("train", help="train (or resume) a run in a directory")
    p.add_argument("--run-dir", required=True)
    # Settings default to None: a new run fills in the defaults named in each help, and a
    # resume refuses only the ones given that differ from the run's own.
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="default: seed where TensorFlow lists a GPU, else cpu",
    )
    p.add_argument("--iterations", type=_positive)
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--minutes",
        type=_positive_float,
        help="stop (and save) once the run's training steps have taken this many minutes "
        "in all, counted across resumes",
    )
    p.add_argument(
        "--no-budget",
        action="store_true",
        help="with --resume: lift the run's --minutes budget (to train a finished run longer)",
    )
    p.add_argument("--seed", type=_seed, help="default: 0")
    p.add_argument(
        "--strategy",
        choices=["default", "mirrored"],
        help="default: mirrored where TensorFlow lists 2 or more GPUs, else default",
    )
    p.add_argument("--data", help="'music21' (default) or a JSB .json/.npz path")
    p.add_argument("--condition-voices", type=_voices_arg, help="e.g. soprano or soprano,bass")
    p.add_argument("--learning-rate", type=_positive_float, help="Adam's step size (preset: 0.001)")
    p.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        help="compile the step with XLA (off by default: slower on CPU, see `bench`)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="arithmetic of the layers (default: mixed_bfloat16 on GPUs of compute capability "
        "8.0+ and on CPUs with AVX512-BF16 or AMX, else float32). mixed_bfloat16 keeps "
        "weights, optimizer and BatchNorm in float32 and runs the convolutions in bfloat16: "
        "much slower where the device has no native bfloat16 (see `bench`)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("harmonize", help="melody files -> four-voice MIDI (WAV, MusicXML)")
    p.add_argument("melodies", nargs="+", metavar="MELODY", help=".mid/.midi or .txt files")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--voice", default="soprano", choices=["soprano", "alto", "tenor", "bass"])
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--checkpoint", help="a run directory or an export folder")
    p.add_argument("--tempo", type=_tempo, default=80.0, help="BPM of the written files")
    p.add_argument("--wav", action="store_true")
    p.add_argument("--musicxml", action="store_true")
    p.add_argument("--raw", action="store_true", help="skip the clean-up")
    p.set_defaults(func=cmd_harmonize)

    p = sub.add_parser("evaluate", help="metrics on held-out melodies beside Bach's")
    p.add_argument(
        "--checkpoint",
        action="append",
        help="a model folder (shipped model, run or export); repeat to compare several",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--windows", type=_positive, help="at most this many test windows per voice")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument(
        "--whole",
        action="store_true",
        help="whole chorales harmonized whole, against Bach's distributions (bachgan.whole_eval)",
    )
    p.add_argument(
        "--split",
        choices=("valid", "test"),
        default="valid",
        help="with --whole: the chorales to harmonize (make choices on valid, report on test)",
    )
    p.add_argument(
        "--all-voices", action="store_true", help="with --whole: each voice given in turn"
    )
    p.add_argument("--out", help="with --whole: also write the result as JSON to this file")
    p.add_argument(
        "--chorales", type=_positive, help="with --whole: the split's first N chorales only"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("ship", help="copy a run's export to checkpoints/ with a model card")
    p.add_argument("--run-dir", help="the run whose export to ship")
    p.add_argument("--dest", help="default: the app's model folder (sampling.SHIPPED_DIR)")
    p.add_argument(
        "--reevaluate",
        action="store_true",
        help="evaluate the model at --dest again with today's clean-up and rewrite its card",
    )
    p.add_argument(
        "--iteration", type=_positive, help="the run's export of this iteration (default: newest)"
    )
    p.add_argument("--windows", type=_positive, help="at most this many test windows per voice")
    p.add_argument(
        "--compare",
        action="append",
        metavar="RUN_DIR",
        help="another run to evaluate beside it in the card (repeatable)",
    )
    p.set_defaults(func=cmd_ship)

    p = sub.add_parser("info", help="config and parameter counts as JSON")
    p.add_argument("--preset", default="seed", choices=list(PRESETS))
    p.add_argument("--checkpoint")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("bench", help="speed of training and harmonizing, as JSON")
    p.add_argument("--preset", choices=list(PRESETS))
    p.add_argument("--iterations", type=_positive, default=3)
    p.add_argument("--checkpoint")
    p.add_argument("--json", action="store_true", help="one line of JSON")
    p.add_argument("--markdown", action="store_true", help="the README's table instead of JSON")
    p.add_argument(
        "--from",
        dest="from_json",
        action="append",
        metavar="FILE",
        help="a saved --json result instead of measuring (repeatable: one table for all)",
    )
    p.set_defaults(func=cmd_bench)
    return ap


def _import_tensorflow_quietly() -> None:
    """TensorFlow's C++ start-up notes (oneDNN, absl) ignore TF_CPP_MIN_LOG_LEVEL and would mix
    with the one-line-per-input messages on stderr, so it is imported with fd 2 muted."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command != "prepare-data" and "tensorflow" not in sys.modules:
        _import_tensorflow_quietly()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
