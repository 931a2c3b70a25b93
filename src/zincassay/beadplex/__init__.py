"""Multiplex bead arrays (LEGENDplex, CBA) read on a flow cytometer.

- :mod:`~zincassay.beadplex.panel` — kit files: bead id -> analyte, top standard, standards
- :mod:`~zincassay.beadplex.populations` — bead size groups (FSC/SSC) and bead identities
  (classification-channel clusters), counted against the panel
- :mod:`~zincassay.beadplex.pipeline` — one FCS file -> reporter medians per bead; a run's wells
  -> standard curves and concentrations (:mod:`zincassay.curves`)
- :mod:`~zincassay.beadplex.tables`, :mod:`~zincassay.beadplex.figures`
"""
