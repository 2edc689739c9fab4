"""Challenges a student can submit a run for, each checked automatically from the run's stored files.

A challenge is data: an id, a title, the idea it teaches, the rule in words and a check over the run's
board summary (board.RunSummary: its test metrics, long/short-review accuracy, config, parameters and,
when `reads_gradients` says so, its gradient norms through time) and the class's other runs. A teacher adds one by
adding an entry to CHALLENGES. A check says passed, failed, or None with a reason when the run lacks
what it needs (e.g. a run saved before long-review accuracy was stored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .board import RunSummary


@dataclass(frozen=True)
class Verdict:
    passed: bool | None  # None: cannot be checked (the reason says why)
    reason: str

    @property
    def word(self) -> str:
        return {True: "passed", False: "failed", None: "not checkable"}[self.passed]


@dataclass(frozen=True)
class Challenge:
    id: str
    title: str
    idea: str  # why it is worth doing: the concept behind it
    rule: str  # what passes, in words
    check: Callable[[RunSummary, Sequence[RunSummary]], Verdict]  # (the run, every run on the board)
    reads_gradients: bool = False  # the check needs the run's gradient norms through time (history.json)


# ---------------------------------------------------------------- the checks
FULL_TEST = 20_000  # test reviews: the full IMDB test split (25,000), not the bundled sample (1,000)


def small_and_accurate(run: RunSummary, everyone: Sequence[RunSummary]) -> Verdict:
    if run.accuracy is None or run.parameters is None:
        return Verdict(None, "the run records no test accuracy or parameter count")
    if (run.n or 0) < FULL_TEST:
        return Verdict(False, f"scored on {run.n or 0:,} test reviews; train on full IMDB to be scored on 25,000")
    ok = run.accuracy >= 0.85 and run.parameters < 50_000
    return Verdict(ok, f"{run.accuracy:.2%} test accuracy with {run.parameters:,} parameters")


def _long_short(run: RunSummary) -> tuple[float, float] | None:
    long, short = (run.slices.get(k) or {} for k in ("long", "short"))
    if long.get("accuracy") is None or short.get("accuracy") is None:
        return None
    return float(long["accuracy"]), float(short["accuracy"])


def forgets_long_reviews(run: RunSummary, everyone: Sequence[RunSummary]) -> Verdict:
    cell = run.config.get("cell")
    if cell not in ("simple_rnn", "lstm"):
        return Verdict(False, "submit a SimpleRNN and an LSTM run for this challenge")
    mine = _long_short(run)
    if mine is None:
        return Verdict(None, "this run stores no accuracy on long and short reviews (reads under 200 words, "
                             "or saved before it was measured)")
    other_cell = "lstm" if cell == "simple_rnn" else "simple_rnn"
    partners = [r for r in everyone if r.owner and r.owner == run.owner and r.path != run.path
                and r.challenge == run.challenge and r.config.get("cell") == other_cell
                and r.n == run.n and r.data == run.data and _long_short(r) is not None]
    if not partners:
        return Verdict(False, f"no {'LSTM' if other_cell == 'lstm' else 'SimpleRNN'} run of yours on the same "
                              "data submitted for this challenge to compare with")
    best = None
    for partner in partners:
        simple, lstm = (run, partner) if cell == "simple_rnn" else (partner, run)
        (s_long, s_short), (l_long, l_short) = _long_short(simple), _long_short(lstm)
        gap_long, gap_short = l_long - s_long, l_short - s_short
        ok = gap_long >= 0.10 and gap_short <= 0.05
        text = (f"on long reviews LSTM {l_long:.1%} vs SimpleRNN {s_long:.1%} ({gap_long:+.1%}); on short "
                f"reviews {l_short:.1%} vs {s_short:.1%} ({gap_short:+.1%}), with {partner.name}")
        if ok:
            return Verdict(True, text)
        best = best or text
    return Verdict(False, best)


def vanishing_gradients(run: RunSummary, everyone: Sequence[RunSummary]) -> Verdict:
    if not run.gradient:
        return Verdict(None, "this run recorded no gradients through time (the gradient probe was off)")
    ratios = [(last / first if first > 0 else float("inf"), epoch) for epoch, first, last in run.gradient]
    ratio, epoch = max(ratios)
    when = "before training" if epoch == 0 else f"after epoch {epoch}"
    shown = "∞" if ratio == float("inf") else f"{ratio:,.0f}x"
    return Verdict(ratio >= 1000, f"‖∂L/∂h_T‖ / ‖∂L/∂h_1‖ = {shown} at most ({when})")


# ---------------------------------------------------------------- the list (add one here)
CHALLENGES: tuple[Challenge, ...] = (
    Challenge(
        "small-and-accurate", "85% with fewer than 50,000 parameters",
        "Most of a model's parameters sit in its embedding table (vocabulary × embedding size). A smaller "
        "vocabulary, shorter vectors and a few units can read sentiment nearly as well: size is not accuracy.",
        "at least 85% test accuracy on the full IMDB test split (25,000 reviews) with under 50,000 parameters",
        small_and_accurate),
    Challenge(
        "forgets-long-reviews", "A SimpleRNN that forgets, an LSTM that remembers",
        "A SimpleRNN multiplies its state by the same matrix at every word, so what it read early fades; an "
        "LSTM's cell state carries it through gates. The difference shows on long reviews, not on short ones.",
        "submit a SimpleRNN and an LSTM run on the same data (max length of 200 words or more): on the long "
        "test reviews (200+ words read) the LSTM is at least 10 points more accurate, while on the short ones "
        "(under 100 words) it is at most 5 points ahead",
        forgets_long_reviews),
    Challenge(
        "vanishing-gradients", "Show vanishing gradients",
        "The gradient that reaches an early word is a product of one factor per later step; when they are "
        "below 1 it shrinks exponentially, and the network cannot learn from the start of a review.",
        "a run whose gradient at step 1 is at least 1,000 times smaller than at the last step (‖∂L/∂h_1‖ ≤ "
        "‖∂L/∂h_T‖ / 1000) in some recorded epoch: see Inside the RNN, 'Gradients through time'",
        vanishing_gradients, reads_gradients=True),
)
BY_ID: dict[str, Challenge] = {c.id: c for c in CHALLENGES}
READS_GRADIENTS = frozenset(c.id for c in CHALLENGES if c.reads_gradients)  # for board.class_runs


class ChallengeError(ValueError):
    """A challenge id that is not in CHALLENGES."""


def check_id(challenge: str | None) -> str | None:
    if challenge in (None, ""):
        return None
    if challenge not in BY_ID:
        raise ChallengeError(f"no challenge {str(challenge)[:40]!r}; choose one of {', '.join(BY_ID)}")
    return challenge


def verdict(run: RunSummary, everyone: Sequence[RunSummary]) -> Verdict | None:
    """The run's verdict for the challenge it was submitted for, or None when it was submitted for none."""
    challenge = BY_ID.get(run.challenge or "")
    if challenge is None:
        return None
    if run.error:
        return Verdict(None, f"the run {run.error}")
    return challenge.check(run, everyone)
