"""Bach chorales as voices, windows, splits and a tf.data pipeline.

Sources:
- the music21 corpus (default): every Bach chorale with exactly four parts in a
  meter of 16 sixteenths per bar (4/4 or 2/2), parsed once and cached as .npz;
- the JSB "16th separated" files of Coconet and the DeepComposer lab (JSON, or npz
  only when the user names that file because it needs pickle).

Chorales become `Voices` (pitch and onset per 16th step), aligned so bar lines fall
on multiples of 16 steps, then every 32-step window with a given hop.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bachgan.voices import SILENT, STEPS_PER_BAR, WINDOW_STEPS, Voices

CACHE_VERSION = 3  # 3: triple meters and fermatas
BAR_STEPS = {"4/4": 16, "2/2": 16, "3/4": 12, "3/2": 24}  # sixteenths a bar, per meter read
BAR_STEPS_OK = {"4/4", "2/2"}  # meters whose bar is 16 sixteenths, as melodies' bars are


@dataclass
class Chorale:
    """One chorale: its id (e.g. 'bwv1.6'), voices, key name (music21's, e.g. 'f# minor'),
    meter, and `fermatas`, bool (steps,): True where a note under a fermata sounds (the
    chorale's phrase ends; None where the source has none)."""

    name: str
    voices: Voices
    key: str = ""
    meter: str = "4/4"
    fermatas: np.ndarray | None = None

    @property
    def bar_steps(self) -> int:
        return BAR_STEPS[self.meter]


@dataclass
class Corpus:
    """Chorales by split, plus what was skipped and why."""

    splits: dict[str, list[Chorale]]
    skipped: dict[str, str] = field(default_factory=dict)
    source: str = "music21"

    def chorales(self, split: str, meters=BAR_STEPS_OK) -> list[Chorale]:
        """A split's chorales in the given meters (by default those of 16 sixteenths a bar)."""
        return [c for c in self.splits[split] if c.meter in meters]

    def windows(self, split: str, hop: int = STEPS_PER_BAR, meters=BAR_STEPS_OK) -> list[Voices]:
        return [w for c in self.chorales(split, meters) for w in windows(c.voices, hop)]

    def split_names(self) -> dict[str, list[str]]:
        return {k: [c.name for c in v] for k, v in self.splits.items()}


# ---------------------------------------------------------------- music21 corpus


def split_of(name: str) -> str:
    """Deterministic split by chorale id: about 80/10/10, stable on any machine."""
    h = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10
    return "test" if h == 0 else "valid" if h == 1 else "train"


@functools.cache
def _titles() -> dict[str, str]:
    """BWV number -> title, from the Riemenschneider list music21's chorale Iterator titles
    its scores with (read once; no score is parsed). Where one setting is listed with several
    texts, the first is kept."""
    from music21.corpus.chorales import ChoraleListRKBWV

    listed = ChoraleListRKBWV().byRiemenschneider
    titles: dict[str, str] = {}
    for number in sorted(listed):
        titles.setdefault(str(listed[number]["bwv"]), listed[number]["title"])
    return titles


def chorale_title(name: str) -> str:
    """How people know a chorale: 'BWV 269 — Aus meines Herzens Grunde' for 'bwv269', the
    BWV number alone where music21 knows no title, other ids as they are."""
    if not name.startswith("bwv"):
        return name
    number = name.removeprefix("bwv")
    title = _titles().get(number)
    return f"BWV {number} — {title}" if title else f"BWV {number}"


FORMATS = (".mxl", ".xml", ".musicxml", ".krn")


def chorale_id(file_name: str) -> str:
    """A corpus file's chorale id, the same for every format: 'bwv10.7.mxl' and
    'bwv10.7.krn' -> 'bwv10.7' (also reads ids older runs recorded, like 'bwv281.krn')."""
    for suffix in FORMATS:
        if file_name.endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def parse_chorale(path: str) -> tuple[str, Chorale | None, str]:
    """Parse one corpus file -> (name, chorale or None, reason skipped)."""
    from music21 import chord, converter, expressions

    name = chorale_id(Path(path).name)
    try:
        score = converter.parse(path)
    except Exception as err:  # a broken corpus file is skipped, not fatal
        return name, None, f"does not parse ({type(err).__name__})"
    parts = list(score.parts)
    if len(parts) != 4:
        return name, None, f"has {len(parts)} parts, not 4"
    meters = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if len(meters) != 1 or not meters <= BAR_STEPS.keys():
        shown = "/".join(sorted(meters)) or "unknown"
        why = "changes meter" if len(meters) > 1 else "is not 4/4, 2/2, 3/4 or 3/2"
        return name, None, f"meter {shown} {why}"
    first_bar = parts[0].getElementsByClass("Measure").first()
    pickup = int(round(float(first_bar.paddingLeft) * 4)) if first_bar is not None else 0
    columns, onset_cols = [], []
    end = int(round(float(score.highestTime) * 4)) + pickup
    fermatas = np.zeros(end, bool)
    for part in parts:
        pitch = np.full(end, SILENT, np.int16)
        onset = np.zeros(end, bool)
        for n in part.stripTies().flatten().notes:
            if n.quarterLength == 0:  # grace notes take no time on the grid
                continue
            start = pickup + int(round(float(n.offset) * 4))
            stop = pickup + int(round(float(n.offset + n.quarterLength) * 4))
            p = max(x.midi for x in n.pitches) if isinstance(n, chord.Chord) else n.pitch.midi
            if stop > start:
                pitch[start:stop] = p
                onset[start] = True
                if any(isinstance(e, expressions.Fermata) for e in n.expressions):
                    fermatas[start:stop] = True
        columns.append(pitch)
        onset_cols.append(onset)
    voices = Voices(np.stack(columns, 1), np.stack(onset_cols, 1))
    # Keep voice order SATB even if a file lists parts differently.
    order = np.argsort([-np.mean(c[c >= 0]) if (c >= 0).any() else 0 for c in columns])
    voices = Voices(voices.pitches[:, order], voices.onsets[:, order])
    try:
        key = str(score.analyze("key"))
    except Exception:
        key = ""
    return name, Chorale(name, voices, key, meters.pop(), fermatas), ""


def cache_dir() -> Path:
    """Where the parsed corpus and the machine's training lock live ($BACHGAN_CACHE)."""
    return Path(os.environ.get("BACHGAN_CACHE") or Path.home() / ".cache" / "bachgan")


def cache_path() -> Path:
    return cache_dir() / f"chorales-v{CACHE_VERSION}.npz"


def _save_cache(corpus: Corpus, path: Path) -> None:
    names = [c.name for s in corpus.splits.values() for c in s]
    chorales = [c for s in corpus.splits.values() for c in s]
    lengths = np.array([c.voices.steps for c in chorales], np.int64)
    meta = {
        "version": CACHE_VERSION,
        "names": names,
        "keys": [c.key for c in chorales],
        "meters": [c.meter for c in chorales],
        "splits": [split_of(n) for n in names],
        "skipped": corpus.skipped,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        np.savez_compressed(
            f,
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            lengths=lengths,
            pitches=np.concatenate([c.voices.pitches for c in chorales]),
            onsets=np.concatenate([c.voices.onsets for c in chorales]),
            fermatas=np.concatenate([_fermatas(c) for c in chorales]),
        )
    os.replace(f.name, path)


def _fermatas(c: Chorale) -> np.ndarray:
    return np.zeros(c.voices.steps, bool) if c.fermatas is None else c.fermatas


def _load_cache(path: Path) -> Corpus:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        if meta.get("version") != CACHE_VERSION:
            raise ValueError("old cache format")
        pitches, onsets, lengths = z["pitches"], z["onsets"], z["lengths"]
        fermatas = z["fermatas"]
    splits: dict[str, list[Chorale]] = {"train": [], "valid": [], "test": []}
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for i, name in enumerate(meta["names"]):
        a, b = starts[i], starts[i + 1]
        voices = Voices(pitches[a:b], onsets[a:b])
        ch = Chorale(name, voices, meta["keys"][i], meta["meters"][i], fermatas[a:b])
        splits[meta["splits"][i]].append(ch)
    return Corpus(splits, meta["skipped"], "music21")


def load_music21(rebuild: bool = False, workers: int | None = None, progress=None) -> Corpus:
    """The music21 Bach chorales, from the cache when valid, else parsed (about a minute).

    `progress(done, total)` is called while parsing.
    """
    path = cache_path()
    if path.exists() and not rebuild:
        try:
            return _load_cache(path)
        except Exception:
            pass  # missing, corrupt or older format: rebuild below
    from music21 import corpus as m21corpus

    # The same chorale in two formats (bwv277, bwv281, bwv366 as .mxl and .krn) has one id, so
    # the split keeps it on one side. The first copy that parses is used, MusicXML first.
    def by_id(p: str):
        return chorale_id(Path(p).name), Path(p).suffix != ".mxl", p

    files = sorted((str(p) for p in m21corpus.getComposer("bach")), key=by_id)
    copies = Counter(chorale_id(Path(f).name) for f in files)
    splits: dict[str, list[Chorale]] = {"train": [], "valid": [], "test": []}
    skipped: dict[str, str] = {}
    seen: set[str] = set()
    with ProcessPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        for i, (name, ch, why) in enumerate(pool.map(parse_chorale, files, chunksize=8)):
            if progress:
                progress(i + 1, len(files))
            # One entry per file: a chorale in two formats is listed under both, by format.
            label = f"{name} ({Path(files[i]).suffix})" if copies[name] > 1 else name
            if ch is None:
                skipped[label] = why
            elif name in seen:
                skipped[label] = "another copy of a chorale read"
            else:
                seen.add(name)
                splits[split_of(name)].append(ch)
    corpus = Corpus(splits, skipped, "music21")
    _save_cache(corpus, path)
    return corpus


# ---------------------------------------------------------------- JSB 16th separated


def load_jsb(path: str | os.PathLike) -> Corpus:
    """Coconet's JSB split: JSON (-1 silent) or, when named explicitly, npz (NaN silent).

    The format has no onsets: a repeated note merges into one held note.
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=True, encoding="latin1") as z:
            data = {k: list(z[k]) for k in ("train", "valid", "test")}
    else:
        data = json.loads(path.read_text())
    splits = {}
    for split in ("train", "valid", "test"):
        chorales = []
        for i, steps in enumerate(data[split]):
            arr = np.asarray(steps, dtype=np.float64)
            arr = np.where(np.isnan(arr) | (arr < 0), SILENT, arr).astype(np.int16)
            chorales.append(Chorale(f"jsb-{split}-{i}", Voices.from_pitches(arr)))
        splits[split] = chorales
    return Corpus(splits, {}, f"jsb:{path.name}")


def load_corpus(source: str = "music21", **kw) -> Corpus:
    """'music21' (default) or a path to a JSB .json / .npz file."""
    return load_music21(**kw) if source == "music21" else load_jsb(source)


# ---------------------------------------------------------------- windows


def windows(voices: Voices, hop: int = STEPS_PER_BAR, length: int = WINDOW_STEPS) -> list[Voices]:
    """Every `length`-step window starting at multiples of `hop` (bar-aligned by default)."""
    return [voices.slice(s, s + length) for s in range(0, voices.steps - length + 1, hop)]


def stack_windows(ws: list[Voices]) -> np.ndarray:
    """Windows -> int16 array (N, steps, voices) of pitches for the pipeline."""
    return np.stack([w.pitches for w in ws]) if ws else np.zeros((0, WINDOW_STEPS, 4), np.int16)


# ---------------------------------------------------------------- tf.data pipeline


def _scale_table() -> np.ndarray:
    from bachgan.context import _SCALE_TABLE

    return _SCALE_TABLE


def shift_bounds(pitches: np.ndarray, low: int, n_pitches: int, transpose=(-5, 6)):
    """Per window, the transpositions within `transpose` that keep every voice in range."""
    sounding = pitches >= 0
    hi_p = np.where(sounding, pitches, -1000).max(axis=(1, 2))
    lo_p = np.where(sounding, pitches, 1000).min(axis=(1, 2))
    empty = ~sounding.any(axis=(1, 2))
    lo = np.where(empty, 0, np.maximum(transpose[0], low - lo_p))
    hi = np.where(empty, 0, np.minimum(transpose[1], low + n_pitches - 1 - hi_p))
    return lo.astype(np.int32), hi.astype(np.int32)


def make_dataset(
    pitches: np.ndarray, preset, seed: int = 0, start_iteration: int = 0, context=None
):
    """Training batches of (roll, condition roll, condition voice).

    With a preset that takes context, `context` is `bachgan.context.window_table`'s dict
    for the same windows (its "pitches" are `pitches`), and the condition carries the
    context planes after the melody's plane, the key's planes transposed with the window.

    Each batch holds `critic_steps` minibatches (one GAN iteration). Shuffling uses a
    fixed seed and augmentation a stateless seed per stream position, so the stream
    is the same on every run and `start_iteration` skips exactly what was consumed:
    resuming continues the same data order.
    """
    import tensorflow as tf

    p = preset
    lo, hi = shift_bounds(pitches, p.low, p.n_pitches, p.transpose)
    keep = lo <= hi  # windows that cannot fit the pitch range at all are dropped
    pitches, lo, hi = pitches[keep], lo[keep], hi[keep]
    table = tf.constant(pitches.astype(np.int32))
    if p.context:
        times = tf.constant(context["time"][keep])
        tonics = tf.constant(context["tonic"][keep])
        minors = tf.constant(context["minor"][keep])
        pitch_class = tf.constant((np.arange(p.low, p.low + p.n_pitches) % 12).astype(np.int32))
        scales = tf.constant(_scale_table())
    lo_t, hi_t = tf.constant(lo), tf.constant(hi)
    voices = tf.constant(list(p.condition_voices), tf.int32)
    per_iteration = p.batch_size * p.critic_steps

    def encode(position, index):
        shift = tf.random.stateless_uniform(
            [], [seed, position], lo_t[index], hi_t[index] + 1, dtype=tf.int32
        )
        pick = tf.random.stateless_uniform(
            [], [seed + 1, position], 0, tf.size(voices), dtype=tf.int32
        )
        voice = voices[pick]
        w = table[index]
        rows = tf.where(w >= 0, w + shift - p.low, -1)  # -1 one-hot encodes as all zeros
        roll = tf.transpose(tf.one_hot(rows, p.n_pitches), [0, 2, 1]) * 2.0 - 1.0
        cond = tf.gather(roll, [voice], axis=-1)
        if p.context:
            rel = (pitch_class - tonics[index] - shift) % 12
            minor = minors[index]
            keys = tf.stack(
                [
                    tf.gather(scales[minor], rel),
                    tf.cast(tf.equal(rel, 0), tf.float32),
                    tf.fill([p.n_pitches], tf.cast(minor, tf.float32)),
                ],
                -1,
            )  # (P, 3)
            steps = tf.shape(w)[0]
            key_part = tf.broadcast_to(keys[None], [steps, p.n_pitches, 3])
            time_part = tf.broadcast_to(times[index][:, None, :], [steps, p.n_pitches, 3])
            cond = tf.concat([cond, key_part, time_part], -1)
        return roll, cond, voice

    ds = tf.data.Dataset.range(len(pitches))
    ds = ds.shuffle(len(pitches), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.enumerate().skip(start_iteration * per_iteration)
    ds = ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(per_iteration, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
