"""Is the canary better than the live version? A paired, sequential test on the images both have answered.
Pure.

Example:
    ev = evidence([(True, False)] * 8 + [(True, True)] * 3)   # (canary right, live right), one per image
    ev.canary_only, ev.live_only, ev.lr_better, ev.p_better    # 8, 0, 56.8, 0.0176
    verdict(ev, alpha=0.05, max_samples=200)                   # ("promote", "better than live: n=11, ...")

Only discordant images carry evidence (McNemar): b = the canary is right and live wrong, c = the reverse.
Under "no better", b ~ Binomial(b + c, p) with p <= 1/2. The test is the mixture sequential probability ratio
test (mSPRT; Robbins 1970, Johari et al. 2017): with a uniform prior on p in (1/2, 1],

    LR_better(b, c) = E_{p ~ U(1/2, 1)} [ p^b (1-p)^c ] / (1/2)^(b+c)

is a non-negative supermartingale whenever p <= 1/2, so by Ville's inequality P(it ever reaches 1/alpha) <=
alpha, however often the analysis looks. Promote when LR_better >= 1/alpha; roll back when LR_worse (the same,
with b and c swapped) >= 1/alpha. p = min(1, 1/LR) is an always-valid p-value for the look it is computed at.
The fixed-n exact McNemar p-value is reported beside it, for reference only: it is valid for one look.

With every discordant pair in the canary's favour, 7 pairs decide at alpha = 0.05 (LR 32); 6 do not (18.3).

Several canaries for one live version: the k-th (k = 0, 1, ...) is tested at spend(alpha, k) = alpha / 2^(k+1),
so the chance that ANY of them is promoted while no better stays at most alpha (a union bound). Each halving
costs about one more discordant pair.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable


def _log_binom_cdf_half(k: int, m: int) -> float:
    """log P(Binomial(m, 1/2) <= k)."""
    if k >= m:
        return 0.0
    return math.log(sum(math.comb(m, i) for i in range(k + 1))) - m * math.log(2)


def log_lr_better(b: int, c: int) -> float:
    """log of the mixture likelihood ratio for "the canary is right more often than live on discordant images".
    The integral of p^b (1-p)^c over (1/2, 1] is B(b+1, c+1) P(Binomial(b+c+1, 1/2) <= b); the uniform
    prior's density there is 2."""
    n = b + c
    log_beta = math.lgamma(b + 1) + math.lgamma(c + 1) - math.lgamma(n + 2)
    return math.log(2) + n * math.log(2) + log_beta + _log_binom_cdf_half(b, n + 1)


def mcnemar_p(b: int, c: int) -> float:
    """Exact one-sided McNemar p-value, P(Binomial(b+c, 1/2) >= b): one look only."""
    n = b + c
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(b, n + 1)) / 2 ** n


def wilson(right: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of an accuracy (95% by default); None with no samples."""
    if n == 0:
        return None
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


@dataclass(frozen=True)
class Evidence:
    n: int                   # images both versions answered, with an honest label
    both_right: int
    both_wrong: int
    canary_only: int         # b: the canary right, live wrong
    live_only: int           # c: live right, the canary wrong
    lr_better: float
    lr_worse: float
    p_better: float          # always-valid p-values at this look
    p_worse: float
    mcnemar_p: float         # one-sided exact McNemar, fixed-n (for reference)

    def to_json(self) -> dict:
        out = asdict(self)
        for k in ("lr_better", "lr_worse", "p_better", "p_worse", "mcnemar_p"):
            out[k] = float(f"{out[k]:.4g}")
        return out


def evidence(pairs: Iterable[tuple[bool, bool]]) -> Evidence:
    """`pairs`: (canary right, live right) for each honestly labelled image."""
    counts = {(True, True): 0, (False, False): 0, (True, False): 0, (False, True): 0}
    for canary, live in pairs:
        counts[(bool(canary), bool(live))] += 1
    b, c = counts[(True, False)], counts[(False, True)]
    better, worse = math.exp(min(log_lr_better(b, c), 700)), math.exp(min(log_lr_better(c, b), 700))
    return Evidence(n=sum(counts.values()), both_right=counts[(True, True)], both_wrong=counts[(False, False)],
                    canary_only=b, live_only=c, lr_better=better, lr_worse=worse, p_better=min(1.0, 1 / better),
                    p_worse=min(1.0, 1 / worse), mcnemar_p=mcnemar_p(b, c))


def spend(alpha: float, generation: int) -> float:
    """The error rate of the generation-th canary tried against one live version (0 for the first)."""
    return alpha / 2 ** (generation + 1)


def holdout_drop_allowed(accuracy: float, n: int, z: float = 1.645) -> float:
    """How far a hold-out accuracy may fall and still be noise: z standard errors of the difference of two
    accuracies near `accuracy` on `n` images each (one-sided 5% by default)."""
    if n <= 0:
        return 0.0
    return z * math.sqrt(2 * accuracy * (1 - accuracy) / n)


def verdict(ev: Evidence, alpha: float, max_samples: int, holdout: tuple[float, float, int] | None = None,
            expired: bool = False) -> tuple[str, str]:
    """("promote" | "rollback" | "wait", why). `holdout`: (canary's accuracy, live's, images), checked before
    a promotion; `expired`: the canary's time budget is spent."""
    counts = f"n={ev.n}, discordant {ev.canary_only} for the canary vs {ev.live_only} for live"
    stats = f"{counts}, LR {ev.lr_better:.3g} (p={ev.p_better:.3g}) at alpha {alpha}"
    if ev.lr_worse >= 1 / alpha:
        return "rollback", f"worse than live: {counts}, LR {ev.lr_worse:.3g} (p={ev.p_worse:.3g}) at alpha {alpha}"
    if ev.lr_better >= 1 / alpha:
        if holdout is not None:
            canary, live, n = holdout
            allowed = holdout_drop_allowed(live, n)
            if canary < live - allowed:
                return "rollback", (f"better on the voted images ({stats}), but its hold-out accuracy {canary:.3f} "
                                    f"is below live's {live:.3f} by more than noise ({allowed:.3f} on {n} images)")
        return "promote", f"better than live: {stats}"
    if ev.n >= max_samples:
        return "rollback", f"no decision within the budget of {max_samples} images: {stats}"
    if expired:
        return "rollback", f"no decision within the time budget: {stats}"
    return "wait", f"not decided yet: {stats}"
