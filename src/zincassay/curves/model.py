"""The four- and five-parameter logistic (4PL, 5PL) and its inverse.

    y(x) = d + (a - d) / (1 + (x / c)**b)**g

``a`` is the response at zero concentration, ``d`` the response at infinite concentration, ``c``
the inflection concentration of the 4PL (the 50 % point), ``b > 0`` the slope and ``g > 0`` the
asymmetry (``g = 1``: the 4PL). Rodbard & Hutt (1974) for the 4PL; Gottschalk & Dunn, Anal.
Biochem. 343 (2005) 54-65 for the 5PL. ``x = 0`` is exact (``y = a``), so blanks and an untreated
dose enter the fit as they are, with no logarithm of zero.

Fits work on the vector ``theta = (a, d, ln c, ln b[, ln g])`` so that ``b``, ``c`` and ``g`` stay
positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MODELS", "Logistic", "jacobian", "n_params", "response"]

MODELS = ("4pl", "5pl")


def n_params(model: str) -> int:
    """Number of mean parameters of ``model`` (4 or 5)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; use one of {MODELS}")
    return 4 if model == "4pl" else 5


def _u(x: np.ndarray, lnc: float | np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """(x/c)**b, exactly 0 at x = 0; broadcasts parameter arrays against x."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        lx = np.log(np.where(x > 0, x, 1.0))
        u = np.exp(np.minimum(b * (lx - lnc), 700.0))
    return np.where(x > 0, u, 0.0)


def response(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Mean response at concentrations ``x`` (any shape) for ``theta = (a, d, ln c, ln b[, ln g])``."""
    a, d, lnc, lnb = theta[:4]
    g = np.exp(theta[4]) if len(theta) > 4 else 1.0
    u = _u(x, lnc, np.exp(lnb))
    return d + (a - d) * np.power(1.0 + u, -g)


def jacobian(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """d response / d theta, shape (len(x), len(theta))."""
    x = np.asarray(x, dtype=np.float64)
    a, d, lnc, lnb = theta[:4]
    b = np.exp(lnb)
    g = np.exp(theta[4]) if len(theta) > 4 else 1.0
    u = _u(x, lnc, b)
    h = np.power(1.0 + u, -g)
    dh_du = -g * np.power(1.0 + u, -g - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnu = np.where(u > 0, np.log(np.where(u > 0, u, 1.0)), 0.0)
    cols = [h, 1.0 - h, (a - d) * dh_du * (-b * u), (a - d) * dh_du * u * lnu]
    if len(theta) > 4:
        cols.append((a - d) * (-g * np.log1p(u) * h))
    return np.column_stack(cols)


@dataclass(frozen=True)
class Logistic:
    """A fitted 4PL/5PL curve in natural units (concentration units of the standards)."""

    model: str
    a: float
    d: float
    c: float
    b: float
    g: float = 1.0

    @classmethod
    def from_theta(cls, model: str, theta: np.ndarray) -> Logistic:
        g = float(np.exp(theta[4])) if model == "5pl" else 1.0
        return cls(model, float(theta[0]), float(theta[1]), float(np.exp(theta[2])), float(np.exp(theta[3])), g)

    @property
    def theta(self) -> np.ndarray:
        t = [self.a, self.d, np.log(self.c), np.log(self.b)]
        if self.model == "5pl":
            t.append(np.log(self.g))
        return np.array(t, dtype=np.float64)

    @property
    def increasing(self) -> bool:
        """True when the response rises with concentration (``d > a``)."""
        return self.d > self.a

    def response(self, x: np.ndarray) -> np.ndarray:
        """Mean response at ``x`` (concentration, any shape)."""
        return response(x, self.theta)

    def concentration(self, y: np.ndarray) -> np.ndarray:
        """Inverse: the concentration giving mean response ``y``; NaN where ``y`` is not strictly
        between the asymptotes ``a`` and ``d`` (no extrapolation beyond the curve)."""
        return np.exp(log_concentration(y, self.theta))


def log_concentration(y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """ln of the inverse of :func:`response`; NaN outside the open interval between ``a`` and ``d``.

    ``theta`` may be (p,) or (p, m) for m parameter vectors (columns), broadcast against ``y``.
    """
    y = np.asarray(y, dtype=np.float64)
    a, d, lnc, lnb = theta[0], theta[1], theta[2], theta[3]
    g = np.exp(theta[4]) if len(theta) > 4 else 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = (y - d) / (a - d)  # in (0, 1) between the asymptotes; 1 at x = 0
        ok = (q > 0) & (q < 1)
        q = np.where(ok, q, 0.5)
        s = np.expm1(-np.log(q) / g)  # q**(-1/g) - 1 > 0
        lx = lnc + np.log(s) / np.exp(lnb)
    return np.where(ok, lx, np.nan)
