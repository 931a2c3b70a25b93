"""Zinc imaging: read, register, segment, extract traces and calibrate FluoZin-3 / Zinpyr-1 stacks.

One module per step: :mod:`~zincassay.io.stacks` (stacks and metadata),
:mod:`~zincassay.imaging.register` (drift and jolts), :mod:`~zincassay.imaging.segment` (cells on
the Fmax reference), :mod:`~zincassay.imaging.traces` (per-cell means, background, saturation),
:mod:`~zincassay.imaging.calibrate` (events, plateaus, bleaching, [Zn2+], QC) and
:mod:`~zincassay.imaging.pipeline` (one sample end to end).
"""
