"""Flow-cytometry building blocks shared by every flow assay (CFSE, zinc by flow, bead arrays).

- :mod:`zincassay.flow.transforms` — display/analysis scales (``safe_log10``)
- :mod:`zincassay.flow.gating` — scatter (lymphocyte), singlet and live gates
"""
