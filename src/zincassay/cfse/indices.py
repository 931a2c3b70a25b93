"""Division indices from cells per generation, as defined in ``docs/science.md`` §1.

Notation: ``N_i`` = cells counted in generation ``i`` at harvest (``i = 0`` undivided);
precursors of generation ``i`` = ``N_i / 2**i``; ``p_i`` = share of precursors that ended in
generation ``i``. Reference: Roederer M., Cytometry A 2011;79:95-101. All indices assume that no
cell died. Names used elsewhere for the same quantities (FlowJo, FCS Express, ModFit, flowFit)
are in the README's alias table.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INDEX_NAMES", "division_indices", "precursor_fractions"]

INDEX_NAMES = (
    "pct_divided",
    "fraction_diluted",
    "division_index",
    "proliferation_index",
    "expansion_index",
    "replication_index",
)


def precursor_fractions(cells: np.ndarray) -> np.ndarray:
    """``p_i = (N_i / 2**i) / sum_j (N_j / 2**j)``; shape (n_generations,)."""
    n = np.asarray(cells, dtype=np.float64)
    prec = n / np.power(2.0, np.arange(n.size))
    total = prec.sum()
    return prec / total if total > 0 else np.full(n.size, np.nan)


def division_indices(cells: np.ndarray) -> dict[str, float]:
    """The six indices from cells per generation ``N_0..N_G`` (array of shape (G+1,)).

    Returns
    -------
    dict
        ``pct_divided`` = 100(1 - p_0) [%]; ``fraction_diluted`` = 100(1 - N_0/sum N) [%];
        ``division_index`` = sum i p_i; ``proliferation_index`` = sum_{i>=1} i p_i / (1 - p_0);
        ``expansion_index`` = sum N / sum (N_i/2^i); ``replication_index`` =
        sum_{i>=1} N_i / sum_{i>=1} (N_i/2^i). Undefined values (no divided cells) are NaN.
    """
    n = np.asarray(cells, dtype=np.float64)
    gen = np.arange(n.size, dtype=np.float64)
    prec = n / np.power(2.0, gen)
    total_cells, total_prec = n.sum(), prec.sum()
    nan = float("nan")
    if total_cells <= 0:
        return dict.fromkeys(INDEX_NAMES, nan)
    p = prec / total_prec
    divided_prec = prec[1:].sum()
    return {
        "pct_divided": float(100.0 * (1.0 - p[0])),
        "fraction_diluted": float(100.0 * (1.0 - n[0] / total_cells)),
        "division_index": float((gen * p).sum()),
        "proliferation_index": float((gen[1:] * p[1:]).sum() / (1.0 - p[0])) if p[0] < 1 else nan,
        "expansion_index": float(total_cells / total_prec),
        "replication_index": float(n[1:].sum() / divided_prec) if divided_prec > 0 else nan,
    }
