"""Clean-up: from the generator's pitch scores to singable voices.

The generator writes a score in [-1, 1] for every (step, pitch, voice); its raw
decoding (strongest pitch per step) can flicker, cross voices and clash. The default
clean-up, `voice_lead`, keeps the generator's choices but reads them the way a
chorale is written: for each step it takes the generator's CANDIDATES best pitches per
voice and picks, by dynamic programming over the whole piece, the sequence of voicings
that maximises the generator's scores minus these costs:

- Bach's habits (`bachgan.style`, counted on the training chorales): each voice holding
  or moving at its place in the beat, the interval it moves by, the sonority (pitch
  classes above the bass) at its place in the beat, and the voice's register;
- parallel fifths and octaves between any two voices cost PARALLEL_COST;
- voices never cross (S >= A >= T >= B);
- a pitch outside the piece's key costs KEY_COST, outside the voice's choir range
  RANGE_COST per semitone, and upper voices more than an octave apart SPACING_COST;
- with a context (key and phrase ends): cadence terms at the fermatas and the last chord.

USE_STYLE = False replaces Bach's tables with the earlier hand-set costs (a cost per new
note and per semitone of leap, one for a sonority that is no chord), for comparison.
The given voice is never changed. `per_voice` is the simpler earlier decoder (each
voice on its own); `raw=True` elsewhere skips clean-up entirely.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from bachgan import metrics
from bachgan import style as bach_style
from bachgan.context import scale_mask as context_scale
from bachgan.voices import SATB_RANGES, SILENT, STEPS_PER_BEAT, VOICE_NAMES, Voices

CANDIDATES = 6  # the generator's best pitches per voice and step that the clean-up weighs
NOTE_COST = 0.35
LEAP_COST = 0.6
PARALLEL_COST = 5.0
CHORD_COST = 2.0
KEY_COST = 2.0
RANGE_COST = 0.3
SPACING_COST = 0.5
REST_SCORE = -0.9
# With a context (bachgan.context): the piece's key and phrase ends.
CADENCE_COST = 2.0  # a phrase-end chord that is no root-position triad
CADENCE_BONUS = 6.0  # a phrase-end chord approached by its own dominant with leading tone
LEADING_TONE_COST = 3.0  # minor: the lowered 7th in a chord over the dominant
END_COST = 6.0  # the last chord: not the tonic triad over the tonic
# At phrase ends and under the last note the bass is offered the cadence's pitches (tonic,
# dominant) where the generator's k best hold none (`_offer_cadence_bass`).
OFFER_CADENCE_BASS = True
BASS_HOLD_COST = 0.5  # the bass holding a note where the melody moves on a beat
BASS_RESING_STEPS = 8  # a held bass is sung again on a melody's beat after this long
SIXTEENTH_COST = 0.5  # a new note on an odd 16th (Bach's lower voices rarely move in 16ths)
# With Bach's style tables (bachgan.style), the default: each generated voice's moves and
# each sonority cost -log of how likely Bach's chorales make them, times these weights, in
# place of NOTE_COST, SIXTEENTH_COST, LEAP_COST, BASS_HOLD_COST and CHORD_COST.
USE_STYLE = True
STYLE_CHANGE_WEIGHT = 0.1  # holding or moving at a place in the beat
STYLE_INTERVAL_WEIGHT = 0.15  # where a voice moves, against its commonest move
STYLE_CHORD_WEIGHT = 0.3  # the sonority, against the commonest at that place in the beat
STYLE_REGISTER_WEIGHT = 0.3  # a voice's pitch, against its commonest
STYLE_SIXTEENTH_COST = (
    0.0,
    0.0,
    0.0,
    2.0,
)  # S, A, T, B: a new note on an odd 16th, beyond the table


def range_cost(voice: int, pitches: np.ndarray) -> np.ndarray:
    lo, hi = SATB_RANGES[VOICE_NAMES[voice]]
    return RANGE_COST * (np.maximum(lo - pitches, 0) + np.maximum(pitches - hi, 0))


def key_scale(music: Voices) -> np.ndarray:
    """Bool (12,) pitch classes of the Krumhansl key (minor admits raised 6th and 7th)."""
    tonic, mode = metrics.estimate_key(music)
    steps = metrics.MAJOR_SCALE if mode == "major" else metrics.MINOR_SCALE
    scale = np.zeros(12, bool)
    scale[[(tonic + s) % 12 for s in steps]] = True
    return scale


def pitch_cost(voice: int, pitches: np.ndarray, style=None) -> np.ndarray:
    """A pitch's cost in a voice: outside the choir range, and with Bach's tables, -log
    how often he has the voice sing it over its commonest pitch, times
    STYLE_REGISTER_WEIGHT."""
    cost = range_cost(voice, pitches)
    if style is not None:
        reg = np.maximum(style.register[voice], 1e-7)
        cost = cost - STYLE_REGISTER_WEIGHT * np.log(reg[np.asarray(pitches)] / reg.max())
    return cost


def _candidates(roll, voices, low, k, style=None, melody=None, given=None):
    """Per step and generated voice, the k best pitches after `pitch_cost`: (T, k, V). With
    the `melody` (T,) of voice `given`, pitches on the wrong side of it come last (a voice
    never crosses the given one, so they would be wasted places)."""
    rows = np.arange(roll.shape[1]) + low
    adj = np.stack([roll[:, :, v] - pitch_cost(v, rows, style) for v in voices], -1)
    if melody is not None:
        m = melody[:, None]
        for i, v in enumerate(voices):
            wrong = (rows[None, :] > m) if v > given else (rows[None, :] < m)
            adj[:, :, i] -= 1e3 * (wrong & (m >= 0))
    top = np.argsort(-adj, axis=1, kind="stable")[:, :k, :]
    return top + low, np.take_along_axis(adj, top, axis=1)


def voice_lead(
    roll: np.ndarray,
    melody: Voices,
    voice: int,
    low: int,
    k: int | None = None,
    context=None,
) -> Voices:
    """Four voices around the given one (see module doc). roll: (T, P, 4) scores.

    With a `context` (bachgan.context.Context) the key is the piece's. Without, it is first
    that of the melody with the generator's strongest pitches (what a listener would hear);
    if the result's own key differs, it is decoded once more in that key, so the voices
    agree with the key a listener hears in the result.
    """
    style = bach_style.load() if USE_STYLE else None
    k = k or CANDIDATES
    decode = _lattice(roll, melody, voice, low, k, context, style)
    if context is not None:
        return decode(context_scale(context))
    strongest = np.where(roll.max(1) > 0, roll.argmax(1) + low, SILENT)
    strongest[:, voice] = melody.pitches[:, 0]
    scale = key_scale(Voices.from_pitches(strongest))
    out = decode(scale)
    again = key_scale(out)
    return out if np.array_equal(again, scale) else decode(again)


def _lattice(roll, melody, voice, low, k, context=None, style=None):
    """The candidate voicings and their costs, except the key's -> a function from a key's
    scale (bool (12,)) to the best four voices in that key. With a `context`, its cadence
    terms (`_cadence_cost`) are among the costs; with a `style`, Bach's tables price the
    moves and the sonorities (`_style_moves`, `_style_chords`)."""
    t_len = roll.shape[0]
    mel = melody.pitches[:, 0].astype(np.int32)
    others = [v for v in range(4) if v != voice]
    out = np.full((t_len, 4), SILENT, np.int16)
    out[:, voice] = mel
    sounding = np.nonzero(mel >= 0)[0]
    if not sounding.size:
        return lambda scale: Voices(out, np.zeros_like(out, bool))
    a, b = sounding[0], sounding[-1] + 1  # others are silent before and after the melody
    cand_p, cand_s = _candidates(roll[a:b], others, low, k, style, mel[a:b], voice)
    if context is not None and 3 in others and OFFER_CADENCE_BASS:
        _offer_final_tonic(
            cand_p, cand_s, roll[a:b], mel[a:b], others.index(3), low, context, style
        )
        if context.phrase_ends is not None:
            for r in _phrase_starts(context.phrase_ends, a, b):
                _offer_cadence_bass(
                    cand_p, cand_s, roll[a:b], mel[a:b], r, others.index(3), low, context, style
                )
    combos = np.array(list(product(range(k), repeat=3)))  # (S, 3)
    cols = np.arange(3)
    state_p = cand_p[:, combos, cols]  # (T, S, 3)
    state_s = cand_s[:, combos, cols].sum(-1)  # (T, S)
    full = np.insert(state_p, voice, mel[a:b, None], axis=2)  # (T, S, 4) with melody

    on = full >= 0
    upper, lower = full[..., :-1], full[..., 1:]
    both = on[..., :-1] & on[..., 1:]
    crossing = (both & (upper < lower)).any(-1)
    wide = (np.where(both[..., :2], upper[..., :2] - lower[..., :2], 0) > 12).sum(-1)
    mask = np.bitwise_or.reduce(np.where(on, 1 << (np.maximum(full, 0) % 12), 0), axis=-1)
    no_chord = ~metrics.CHORD_FITS[mask]

    cand = [mel[a:b, None]] * 4  # per voice: the pitches it may take at each step
    for i, g in enumerate(others):
        cand[g] = cand_p[:, :, i]
    if style is None:
        beat_onset = melody.onsets[a:b, 0] & (np.arange(a, b) % STEPS_PER_BEAT == 0)
        odd = (np.arange(a + 1, b) % 2 == 1)[:, None, None, None]  # new notes on odd 16ths
        weights = (NOTE_COST + SIXTEENTH_COST * odd, LEAP_COST, PARALLEL_COST)
        cost = _transition_cost(cand, others, k, weights, hold=beat_onset[1:])  # (T-1, S, S)
        chord_cost = CHORD_COST * no_chord
    else:
        moves = _style_moves(style, voice, melody.onsets[a + 1 : b, 0], np.arange(a + 1, b))
        cost = _transition_cost(cand, others, k, (0, 0, PARALLEL_COST), moves=moves)
        chord_cost = _style_chords(style, full, on, mask, np.arange(a, b))
    states = np.arange(len(combos))
    extra = 0.0 if context is None else _cadence_cost(full, mask, mel, a, b, context)
    if context is not None and context.phrase_ends is not None:
        for r in _phrase_starts(context.phrase_ends, a, b):
            cost[r - 1] -= CADENCE_BONUS * _authentic(full[r - 1], full[r], mask[r - 1])

    def decode(scale: np.ndarray) -> Voices:
        emit = state_s - KEY_COST * (~scale[state_p % 12]).sum(-1)
        emit = np.where(crossing, -np.inf, emit)  # no crossing
        emit -= SPACING_COST * wide
        emit -= chord_cost
        emit -= extra
        emit = np.where(np.isfinite(emit).any(1, keepdims=True), emit, state_s)  # none legal
        best = emit[0].copy()
        back = np.zeros(emit.shape, np.int32)
        for t in range(1, b - a):
            total = best - cost[t - 1]  # (S cur, S prev)
            back[t] = total.argmax(1)
            best = total[states, back[t]] + emit[t]
        path = np.empty(b - a, np.int32)
        path[-1] = int(best.argmax())
        for t in range(b - a - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        voices = out.copy()
        voices[a:b, others] = state_p[np.arange(b - a), path]
        return Voices(voices, syllable_onsets(voices, melody, voice))

    return decode


def _transition_cost(
    cand: list,
    generated: list[int],
    k: int,
    weights=(NOTE_COST, LEAP_COST, PARALLEL_COST),
    hold=None,
    moves=None,
) -> np.ndarray:
    """The cost of each step t -> t+1 from each state to each state, as (T-1, S cur, S prev)
    (laid out for the Viterbi's max over the previous state): weights[0] (a number, or per
    step (T-1, 1, 1, 1)) per generated voice that takes a new note, weights[1] per semitone
    of leap beyond a fifth, weights[2] per voice pair moving in parallel fifths or octaves,
    and BASS_HOLD_COST where a generated bass keeps its pitch into a step where `hold` (T-1,)
    is True (the melody moves on a beat: Bach's bass moves there too; it repeats a pitch in
    3% of its moves, the inner voices in 15-21%). `moves` (from `_style_moves`) prices each
    voice's hold or move from Bach's tables in place of the first two weights and `hold`.

    cand[v] (T, n) holds the pitches voice v may take: n = k for the generated voices, 1
    for the melody. States are `product(range(k), repeat=3)` over the generated voices.
    Every term depends on one or two voices' candidates only, so it is worked out on small
    per-step tables, one per pair of generated voices, and only their sum is spread over
    all pairs of states - much less work than comparing every pair of voicings.
    """
    note_w, leap_w, parallel_w = weights
    c = np.stack([np.broadcast_to(x, (len(x), k)) for x in cand], 1)  # (T, 4 voices, k)
    move = c[1:, :, None, :] - c[:-1, :, :, None]  # (T-1, 4, k prev, k cur)
    step = np.abs(move)
    if moves is None:
        alone = note_w * (step != 0) + leap_w * np.maximum(step - 7, 0)
    else:
        stay, go, where = moves  # (T-1, 4), (T-1, 4), (4, 25)
        lim = bach_style.INTERVAL_LIMIT
        to = where[np.arange(4)[None, :, None, None], np.clip(move, -lim, lim) + lim]
        alone = np.where(step == 0, stay[:, :, None, None], go[:, :, None, None] + to)

    p, q = np.triu_indices(4, 1)  # the six voice pairs
    iv = (c[:, p, :, None] - c[:, q, None, :]) % 12  # (T, 6, k_p, k_q)
    sounding = (c[:, p, :, None] >= 0) & (c[:, q, None, :] >= 0)
    perfect = np.where(((iv == 0) | (iv == 7)) & sounding, iv, -1)  # -1: no sounding P5/P8
    parallel = parallel_w * (
        (move[:, p, :, None, :, None] * move[:, q, None, :, None, :] > 0)
        & (perfect[:-1, :, :, :, None, None] == perfect[1:, :, None, None, :, :])
        & (perfect[:-1, :, :, :, None, None] >= 0)
    )  # (T-1, 6, p prev, q prev, p cur, q cur)

    if hold is not None and moves is None and 3 in generated:
        alone[:, 3] += BASS_HOLD_COST * ((step[:, 3] == 0) & hold[:, None, None])
    # One table per pair (a, b) of generated voices, over (a prev, b prev, a cur, b cur).
    g = {v: i for i, v in enumerate(generated)}
    one = [alone[:, v] for v in generated]  # (T-1, prev, cur) per generated voice
    two = {}
    for n, (vp, vq) in enumerate(zip(p, q)):
        if vp in g and vq in g:
            two[g[vp], g[vq]] = parallel[:, n]
        elif vq in g:  # the melody's candidates are all alike: its first stands for all
            one[g[vq]] = one[g[vq]] + parallel[:, n, 0, :, 0, :]
        else:
            one[g[vp]] = one[g[vp]] + parallel[:, n, :, 0, :, 0]
    two[0, 1] = two[0, 1] + one[0][:, :, None, :, None] + one[1][:, None, :, None, :]
    two[0, 2] = two[0, 2] + one[2][:, None, :, None, :]
    return sum(_spread(table, 3 - a - b, k) for (a, b), table in two.items())


def _style_moves(style, voice: int, starts: np.ndarray, steps: np.ndarray):
    """Costs from Bach's tables of each voice holding or moving into `steps` (T-1,) and of
    where it moves, as (stay (T-1, 4), go (T-1, 4), interval (4, 25)): -log probability
    times STYLE_CHANGE_WEIGHT, and -log of an interval's probability over the voice's
    commonest one's times STYLE_INTERVAL_WEIGHT (a step costs nothing: the choice to move
    at all is the change term's). `starts`: the given voice starts a note at the step."""
    p = style.change[voice][:, steps % STEPS_PER_BEAT, starts.astype(int)].T  # (T-1, 4)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    w = STYLE_CHANGE_WEIGHT
    where = np.maximum(style.interval, 1e-6)
    where = -STYLE_INTERVAL_WEIGHT * np.log(where / where.max(-1, keepdims=True))
    odd = np.outer(steps % 2 == 1, STYLE_SIXTEENTH_COST) * (np.arange(4) != voice)
    return -w * np.log1p(-p), -w * np.log(p) + odd, where


def _style_chords(style, full, on, mask, steps: np.ndarray) -> np.ndarray:
    """(T, S) cost of each voicing's sonority (its pitch classes above the bass): -log of
    how often Bach sounds it at that place in the beat over his commonest one's, times
    STYLE_CHORD_WEIGHT."""
    lowest = np.where(on, full, 1000).min(-1)
    sounding = lowest < 1000
    chord = bach_style.chord_set(mask, np.where(sounding, lowest % 12, 0))
    logp = np.log(style.chord / style.chord.max(-1, keepdims=True))
    logp = logp[bach_style.strength(steps)[:, None], chord]
    return -STYLE_CHORD_WEIGHT * np.where(sounding, logp, 0.0)


def _spread(table: np.ndarray, missing: int, k: int) -> np.ndarray:
    """A pair's table (T-1, prev, prev, cur, cur) -> (T-1, S cur, S prev), the same for
    every candidate of the third voice (`missing`: its place among the three). Built by
    np.repeat on flat views: broadcasting a sum over the 7-d (T-1, k, ..., k) view is
    many times slower here."""
    t = len(table)
    x = table.transpose(0, 3, 4, 1, 2)  # current state first
    x = np.repeat(x.reshape(t * k**missing, 1, k ** (4 - missing)), k, 1)
    x = np.repeat(x.reshape(t * k ** (3 + missing), 1, k ** (2 - missing)), k, 1)
    return x.reshape(t, k**3, k**3)


def _triad_masks(root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """12-bit pitch-class masks of the major and minor triads on each root."""
    bits = lambda *d: sum(1 << ((root + x) % 12) for x in d)  # noqa: E731
    return bits(0, 4, 7), bits(0, 3, 7)


def _cadence_cost(full, mask, mel, a, b, context) -> np.ndarray:
    """(T, S) costs from the piece's key and phrase ends: at a phrase end (a fermata) the
    chord is a root-position triad; in minor, a chord over the dominant takes the raised
    leading tone; the last chord is the tonic triad over the tonic (major or minor)."""
    tonic = context.tonic
    bass = np.where(full[..., 3] >= 0, full[..., 3] % 12, -1)  # (T, S)
    major, minor = _triad_masks(np.maximum(bass, 0))
    root_triad = (bass >= 0) & (((mask & ~major) == 0) | ((mask & ~minor) == 0))
    cost = np.zeros(bass.shape)
    if context.phrase_ends is not None:
        ends = np.zeros(b - a, bool)
        known = np.asarray(context.phrase_ends, bool)[a:b]
        ends[: len(known)] = known
        cost += CADENCE_COST * (ends[:, None] & ~root_triad)
    if context.mode == "minor":
        lowered = ((full >= 0) & (full % 12 == (tonic + 10) % 12)).any(-1)
        cost += LEADING_TONE_COST * (lowered & (bass == (tonic + 7) % 12))
    if (mel[a:b] >= 0).any():
        onset = _last_note_start(mel[a:b])
        t_major, t_minor = _triad_masks(np.array(tonic))
        tonic_triad = (bass == tonic) & (((mask & ~t_major) == 0) | ((mask & ~t_minor) == 0))
        cost[onset:] += END_COST * ~tonic_triad[onset:]
    return cost


def _last_note_start(mel: np.ndarray) -> int:
    """The step where the melody's last sounding note starts (held steps of one pitch)."""
    start = int(np.flatnonzero(mel >= 0)[-1])
    while start > 0 and mel[start - 1] == mel[start]:
        start -= 1
    return start


def _offer_final_tonic(cand_p, cand_s, roll, mel, col, low, context, style=None) -> None:
    """Under the melody's last note, the bass may always take the tonic: where the generator's
    k best bass pitches hold none, the tonic nearest its best takes the place of its k-th
    (in place; the generator's score for it is kept)."""
    if not (mel >= 0).any():
        return
    start = _last_note_start(mel)
    steps = list(range(start, len(mel)))
    _offer_bass(cand_p, cand_s, roll, steps, context.tonic, col, low, style)


def _offer_bass(cand_p, cand_s, roll, steps, pc: int, col: int, low: int, style=None) -> None:
    """Offer the bass pitch class `pc` (nearest the generator's best) at `steps`, in place of
    its k-th choice where its k best hold none."""
    lo, hi = SATB_RANGES["bass"]
    best = int(np.median(cand_p[steps, 0, col]))
    q = min((p for p in range(lo, hi + 1) if p % 12 == pc), key=lambda p: abs(p - best))
    for t in steps:
        if q not in cand_p[t, :, col] and 0 <= q - low < roll.shape[1]:
            cand_p[t, -1, col] = q
            cand_s[t, -1, col] = roll[t, q - low, 3] - pitch_cost(3, np.array(q), style)


def _offer_cadence_bass(
    cand_p, cand_s, roll, mel, r: int, col: int, low: int, context, style=None
) -> None:
    """At a phrase end starting at step r: a melody note of the tonic triad is offered the
    tonic in the bass there and the dominant on the beat before (V-I); one of the dominant
    triad, the dominant (a half cadence)."""
    tonic = context.tonic
    note = mel[r] % 12 if mel[r] >= 0 else -1
    third = 3 if context.mode == "minor" else 4
    end = r + 1
    while end < len(mel) and mel[end] == mel[r]:
        end += 1
    if note in (tonic, (tonic + third) % 12, (tonic + 7) % 12):
        _offer_bass(cand_p, cand_s, roll, list(range(r, end)), tonic, col, low, style)
        before = list(range(max(r - STEPS_PER_BEAT, 0), r))
        if before:
            _offer_bass(cand_p, cand_s, roll, before, (tonic + 7) % 12, col, low, style)
    elif note in ((tonic + 7) % 12, (tonic + 11) % 12, (tonic + 2) % 12):
        _offer_bass(cand_p, cand_s, roll, list(range(r, end)), (tonic + 7) % 12, col, low, style)


def _phrase_starts(phrase_ends, a: int, b: int) -> list[int]:
    """Steps (relative to a) where a phrase-end note starts, after the first step."""
    ends = np.zeros(b + 1, bool)
    known = np.asarray(phrase_ends, bool)[: b + 1]
    ends[: len(known)] = known
    starts = np.flatnonzero(ends[1:] & ~ends[:-1]) + 1
    return [int(t - a) for t in starts if a < t < b]


def _authentic(before: np.ndarray, at: np.ndarray, before_mask: np.ndarray) -> np.ndarray:
    """(S at, S before) bool: the chord at a phrase end approached by its own dominant in
    root position with the leading tone sounding (an authentic cadence in the key the phrase
    ends in), judged by the basses: voicings (S, 4) before and at, pitch-class masks (S,)."""
    root, prev = at[:, 3] % 12, before[:, 3] % 12
    fifth_above = (prev[None, :] - root[:, None]) % 12 == 7
    leading = (before_mask[None, :] >> ((root[:, None] + 11) % 12)) & 1
    sounding = (at[:, 3] >= 0)[:, None] & (before[:, 3] >= 0)[None, :]
    return fifth_above & (leading > 0) & sounding


def syllable_onsets(pitches: np.ndarray, melody: Voices, voice: int) -> np.ndarray:
    """Onsets of the generated voices: where their pitch changes, and where an inner voice's
    held note meets a new melody note on a beat (a new syllable: in a chorale all voices sing
    it). A held bass stays held, unless it has sounded BASS_RESING_STEPS or more: in Bach's
    chorales the bass repeats a pitch in 3% of its moves, and never holds a note of two beats
    into a new syllable on a beat."""
    onsets = np.zeros(pitches.shape, bool)
    onsets[:, voice] = melody.onsets[:, 0]
    steps = np.arange(len(pitches))
    beat = (steps % STEPS_PER_BEAT == 0) & melody.onsets[:, 0]
    for v in range(4):
        if v == voice:
            continue
        sounding = pitches[:, v] >= 0
        changed = np.r_[True, pitches[1:, v] != pitches[:-1, v]] & sounding
        if v < 3:
            onsets[:, v] = changed | (beat & sounding)
            continue
        started = -BASS_RESING_STEPS  # the bass's current note began here
        for t in range(len(pitches)):
            if changed[t] or (beat[t] and sounding[t] and t - started >= BASS_RESING_STEPS):
                onsets[t, v], started = True, t
    return onsets


def per_voice(roll: np.ndarray, melody: Voices, voice: int, low: int) -> Voices:
    """Each generated voice decoded on its own (Viterbi with note and leap costs),
    kept on its side of the voices already decided, working outward from the given one."""
    t_len, n = roll.shape[:2]
    pitches = np.full((t_len, 4), SILENT, np.int16)
    pitches[:, voice] = melody.pitches[:, 0]
    rows = np.arange(n) + low
    order = list(range(voice - 1, -1, -1)) + list(range(voice + 1, 4))
    for v in order:
        ref = pitches[:, v + 1 if v < voice else v - 1].astype(int)
        if v < voice:
            allowed = (ref[:, None] < 0) | (rows[None, :] >= ref[:, None])
        else:
            allowed = (ref[:, None] < 0) | (rows[None, :] <= ref[:, None])
        allowed[~allowed.any(1)] = True
        emit = np.concatenate(
            [roll[:, :, v] - range_cost(v, rows), np.full((t_len, 1), REST_SCORE)], 1
        )
        emit[:, :n][~allowed] = -np.inf
        move = np.full((n + 1, n + 1), 2 * NOTE_COST)
        move[:n, :n] += LEAP_COST * np.maximum(np.abs(rows[:, None] - rows[None, :]) - 5, 0)
        np.fill_diagonal(move, 0.0)
        best, back = emit[0].copy(), np.zeros((t_len, n + 1), np.int32)
        for t in range(1, t_len):
            cand = best[:, None] - move
            back[t] = cand.argmax(0)
            best = cand.max(0) + emit[t]
        path = np.empty(t_len, np.int32)
        path[-1] = int(best.argmax())
        for t in range(t_len - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        pitches[:, v] = np.where(path == n, SILENT, path + low)
    onsets = np.zeros_like(pitches, bool)
    onsets[:, voice] = melody.onsets[:, 0]
    return Voices(pitches, onsets)


METHODS = {"voice-leading": voice_lead, "per-voice": per_voice}
