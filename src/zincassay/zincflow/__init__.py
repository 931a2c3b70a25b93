"""Free zinc by flow cytometry: a probe-loaded tube calibrated against its culture's TPEN (Fmin)
and zinc + pyrithione (Fmax) tubes, per T-cell subset, with optional kinetics.

- :mod:`~zincassay.zincflow.settings` — the ``zincflow`` config section, typed
- :mod:`~zincassay.zincflow.tubes` — read, compensate, shared flow gates, marker splits
- :mod:`~zincassay.zincflow.subsets` — marker valleys and subset masks
- :mod:`~zincassay.zincflow.calibrate` — medians, f, [Zn2+], exact-bootstrap CI, QC
- :mod:`~zincassay.zincflow.kinetics` — Time channel, stimulus addition, binned trace
- :mod:`~zincassay.zincflow.pipeline` — files in, :class:`~zincassay.zincflow.pipeline.ZincflowResult` out
- :mod:`~zincassay.zincflow.tables`, :mod:`~zincassay.zincflow.figures` — result to rows / figures
- :mod:`~zincassay.zincflow.controls` — sample-sheet culture matching; :mod:`~zincassay.zincflow.instruments` — pooling rule

See ``docs/science.md`` §5.
"""
