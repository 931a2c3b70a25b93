"""ELISA from plate-reader exports and plate layouts.

- :mod:`~zincassay.elisa.kit` — kit files: analyte, units, top standard, standard series
- :mod:`~zincassay.elisa.plate` — the layout (CSV grid as labs draw it) and the reader's export
  (CSV or Excel; grid or list; one or two wavelengths), joined well by well
- :mod:`~zincassay.elisa.pipeline` — a plate -> dual-wavelength and blank correction, replicate
  means, standard curve and concentrations (:mod:`zincassay.curves`)
- :mod:`~zincassay.elisa.tables`, :mod:`~zincassay.elisa.figures`
"""
