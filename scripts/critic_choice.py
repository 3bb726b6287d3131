"""Does the trained critic pick better windows? Each 2-bar window is drawn with N latents and
the critic's highest (or lowest) score is kept; whole valid chorales, soprano given, scored as
`pick_checkpoint.py` scores exports (mean distance over the Bach-vs-Bach floor; lower is
nearer Bach). VALID split only.

    .venv/bin/python scripts/critic_choice.py EXPORT CHECKPOINT [--n 8]

EXPORT is a run's export folder, CHECKPOINT the training checkpoint of the same iteration
(runs/<run>/checkpoints/ckpt-NNNNNN/ckpt), which holds the critic.
"""

from __future__ import annotations

import argparse

import numpy as np

from bachgan import whole_eval as W
from bachgan.data import load_corpus
from bachgan.sampling import Harmonizer
from bachgan.whole_tables import SUMMARY_LABELS


class CriticChoice(Harmonizer):
    """The generator run on N latents per window; the critic keeps one per window."""

    def __init__(self, export, checkpoint, n: int, pick: str = "max", seed: int = 0):
        import tensorflow as tf

        from bachgan.model import build_critic

        super().__init__(export)
        self.critic = build_critic(self.preset)
        tf.train.Checkpoint(critic=self.critic).read(checkpoint).expect_partial()
        self.n, self.pick, self.rng = n, pick, np.random.default_rng(seed)

    def _run(self, cond, z, voice):
        import tensorflow as tf

        if self.n <= 1:
            return super()._run(cond, z, voice)
        w = len(cond)
        extra = [self.rng.standard_normal(z.shape).astype(np.float32) for _ in range(self.n - 1)]
        c, v = np.concatenate([cond] * self.n), np.concatenate([voice] * self.n)
        out = super()._run(c, np.concatenate([z, *extra]), v)
        args = [tf.constant(out), tf.constant(c, tf.float32), tf.constant(v, tf.int32)]
        score = self.critic(args, training=False).numpy()[:, 0].reshape(self.n, w)
        best = score.argmax(0) if self.pick == "max" else score.argmin(0)
        return out.reshape(self.n, w, *out.shape[1:])[best, np.arange(w)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=8)
    args = parser.parse_args()
    corpus = load_corpus()
    chorales = corpus.chorales("valid")
    train = W.reference_stats(corpus)
    reference = W.by_mode(train)
    bach = {ch.name: W.chorale_stats(ch) for ch in chorales}
    floor = W.floor_row(train, list(bach.values()), 0, draws=10, seed=0)["summary"]
    print("| choice | score (distance / floor) | closed | classifier LR |")
    print("|---|---|---|---|")
    for n, pick in ((1, "max"), (args.n, "max"), (args.n, "min")):
        h = CriticChoice(args.export, args.checkpoint, n, pick)
        stats, skipped = W.run_row(
            lambda ch, v, h=h: W.harmonize_chorale(h, ch, v, W.piece_seed(0, ch.name)), chorales, 0
        )
        r = W.row_result(stats, skipped, bach, reference, 0, 0)
        score = float(np.mean([r["summary"][k] / floor[k] for k in SUMMARY_LABELS]))
        name = "one latent" if n == 1 else f"{n} latents, critic's {pick}"
        lr = r["classifier"]["logistic"]["accuracy"]
        print(f"| {name} | {score:.2f} | {r['closed']:.0%} | {lr:.2f} |", flush=True)


if __name__ == "__main__":
    main()
