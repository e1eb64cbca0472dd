"""What the models of ``(frequency, recency, T)`` patterns share: BG/NBD, MBG/NBD, Pareto/NBD.

:class:`RecencyModel` checks the patterns and fits from every parameter at 1 (unless told
otherwise); :func:`distinct` and :func:`_dot` are the helpers their weighted likelihoods use to
evaluate special functions once per distinct value and to sum long vectors.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from archer.models.base import MLEModel, pattern_data


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` with ``uniques[codes] == values`` (hashing: no sort; NaN kept)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.intp), np.asarray(uniques, dtype=float)


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Dot product of two long vectors without BLAS (its threads stall on a busy machine)."""
    return float(np.einsum("i,i->", u, v))


def check_frequency_recency_T(x, tx, T) -> None:
    if np.any(x < 0) or np.any(tx < 0) or np.any(tx > T) or np.any((x == 0) & (tx != 0)):
        raise ValueError("need frequency >= 0, 0 <= recency <= T, recency 0 when frequency 0")


class RecencyModel(MLEModel):
    """A model of (frequency, recency, T) patterns, fitted from every parameter at 1 unless
    ``initial_params`` says otherwise: BG/NBD, MBG/NBD and Pareto/NBD."""

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        penalizer: float = 0.0,
        initial_params: ArrayLike | None = None,
        maxiter: int = 2000,
    ) -> Self:
        (x, tx, T), w = pattern_data(frequency, recency, T, weights=weights)
        check_frequency_recency_T(x, tx, T)
        start = np.ones(len(self.PARAM_NAMES))
        return self._fit((x, tx, T), w, penalizer, initial_params, maxiter, start)
