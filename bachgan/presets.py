"""The presets: everything that sizes the model, the data and the optimizer, as data.

Kept apart from model.py so that choosing or validating a preset (the command line, the
Train page) does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bachgan.voices import WINDOW_STEPS

# The arithmetic a run trains in (`train --precision`): a setting of the run, not of the
# preset, since it leaves the model and its weights as they are.
PRECISIONS = ("float32", "mixed_bfloat16")
DEFAULT_PRECISION = "float32"  # also what runs from before the option trained in

# Every seed BachGAN takes (a run's, a harmonization's, a latent walk's) is 0 to MAX_SEED:
# a signed 32-bit int, which Keras, NumPy, TensorFlow and a browser's number box all accept.
MAX_SEED = 2**31 - 1


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def run_precision(config: dict) -> str:
    """The precision a run's config.json records (older runs record none: float32)."""
    return config.get("precision") or DEFAULT_PRECISION


@dataclass(frozen=True)
class Preset:
    """Everything that sizes the model, the data and the optimizer."""

    name: str
    low: int = 0  # MIDI pitch of pianoroll row 0
    n_pitches: int = 128
    filters: tuple[int, ...] = (64, 128, 256, 512)
    z_channels: int = 512
    batch_size: int = 64
    condition_voices: tuple[int, ...] = (0,)  # 0 = soprano; the seed is melody-only
    critic_steps: int = 5
    gp_weight: float = 10.0
    learning_rate: float = 1e-3
    beta_1: float = 0.5
    beta_2: float = 0.9
    bn_momentum: float = 0.8
    hop: int = 16  # window hop in steps (one bar)
    transpose: tuple[int, int] = (-5, 6)  # augmentation range, semitones
    sample_every: int = 50
    metrics_every: int = 50
    checkpoint_every: int = 50
    # Key, mode, phrase ends and meter as planes beside the condition (bachgan.context), and
    # training windows from the chorales of every meter the corpus has.
    context: bool = False
    # Exports, samples and metrics use an exponential moving average of the generator's
    # weights with this momentum (Keras's optimizer EMA); 0 = the weights as trained.
    ema_momentum: float = 0.0

    @property
    def condition_channels(self) -> int:
        """The condition's planes: the given voice's pianoroll, then the context's."""
        from bachgan.context import CHANNELS

        return 1 + (CHANNELS if self.context else 0)

    @property
    def z_shape(self) -> tuple[int, int, int]:
        down = 2 ** len(self.filters)
        return (WINDOW_STEPS // down, self.n_pitches // down, self.z_channels)

    @property
    def multi_voice(self) -> bool:
        return len(self.condition_voices) > 1

    @property
    def default_voice(self) -> int:
        """The voice a demo gives the model: the soprano when it takes one, else its first."""
        return 0 if 0 in self.condition_voices else self.condition_voices[0]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preset:
        fields = {f.name for f in dataclasses.fields(cls)}
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in fields}
        return cls(**d)


# Small enough to train on 2 CPU cores in minutes; all four condition voices.
_CPU = Preset(
    "cpu",
    low=28,
    n_pitches=64,
    filters=(16, 32, 64, 128),
    z_channels=64,
    batch_size=32,
    condition_voices=(0, 1, 2, 3),
)
# cpu with twice its filters and z channels, at the seed's batch.
_MID = dataclasses.replace(
    _CPU, name="mid", filters=(32, 64, 128, 256), z_channels=128, batch_size=64
)
PRESETS = {
    # The seed article / DeepComposer lab, unchanged: 8,273,540 + 2,766,785 parameters.
    "seed": Preset("seed", transpose=(0, 0)),
    "cpu": _CPU,
    "mid": _MID,
    # The shipped model: mid, told each window's key, mode, phrase ends and meter
    # (bachgan.context), exported as the moving average of its weights.
    "chorale": dataclasses.replace(_MID, name="chorale", context=True, ema_momentum=0.999),
    # For tests: seconds, not minutes.
    "tiny": dataclasses.replace(
        _CPU,
        name="tiny",
        filters=(8, 16, 16, 32),
        z_channels=8,
        batch_size=8,
        sample_every=5,
        metrics_every=5,
        checkpoint_every=5,
    ),
}


def get_preset(name: str, **overrides) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
