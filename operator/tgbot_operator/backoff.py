"""The one backoff formula of the operator (worker, spec.profile, deletion). Pure."""

from __future__ import annotations

#: 2**16 s is far beyond every cap: larger exponents add nothing but big integers.
_MAX_EXPONENT = 16


def exponential(attempt: int, *, base: float, cap: float) -> float:
    """``base * 2**attempt`` seconds, at most ``cap`` (``attempt`` 0 is the first retry)."""
    return min(cap, base * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))
