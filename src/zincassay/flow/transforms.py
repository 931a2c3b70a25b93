"""Scales for flow-cytometry values (linear detector units in, analysis scale out)."""

from __future__ import annotations

import numpy as np

__all__ = ["safe_log10"]


def safe_log10(x: np.ndarray, floor: float = 1.0) -> np.ndarray:
    """log10 with values below ``floor`` (including <= 0 after compensation) set to log10(floor).

    Parameters
    ----------
    x : array_like
        Linear values (any shape).
    floor : float
        Smallest value kept (linear units).

    Returns
    -------
    ndarray of float64, same shape as ``x``.
    """
    return np.log10(np.maximum(np.asarray(x, dtype=np.float64), floor))
