"""The one backoff formula of the operator (worker, spec.profile, deletion). Pure."""

from __future__ import annotations

#: Retries of Kubernetes failures (the API server down or overloaded) stay below this, so that
#: every worker has tried again within 30 s of its return (x1.2 jitter: at most 19.2 s).
KUBERNETES_CAP = 16.0
#: Retries of Bot API failures (and the operator's own errors) back off up to 5 minutes.
BOT_API_CAP = 300.0
#: 2**16 s is far beyond every cap: larger exponents add nothing but big integers.
_MAX_EXPONENT = 16


def exponential(attempt: int, *, base: float, cap: float) -> float:
    """``base * 2**attempt`` seconds, at most ``cap`` (``attempt`` 0 is the first retry)."""
    return min(cap, base * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))
