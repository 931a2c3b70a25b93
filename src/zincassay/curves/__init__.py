"""Standard curves shared by every immunoassay (bead arrays, ELISA) and by dose-response fits.

- :mod:`zincassay.curves.model` — the 4PL/5PL logistic, its inverse and derivatives
- :mod:`zincassay.curves.fit` — weighted fit: global grid (linear asymptotes profiled out), then
  iteratively reweighted refinement; AIC/AICc
- :mod:`zincassay.curves.standards` — standard series (levels, dilution factor) read from kit files
- :mod:`zincassay.curves.quantify` — one analyte's standard curve: model choice, failed-level check,
  LLOQ/ULOQ from recovery and precision, back-calculated concentrations with intervals
- :mod:`zincassay.curves.settings` — :class:`CurveSettings` from a config section
- :mod:`zincassay.curves.tables`, :mod:`zincassay.curves.figures` — rows and figures of a curve

No assay imports from another; both bead arrays and ELISA import from here.
"""
