"""zincassay: zinc-immunology assays from raw files to donor-paired comparisons.

The science lives in plain functions over numpy arrays and pandas frames (see docs/architecture.md):

- :mod:`zincassay.io` — readers: FCS 2.0–3.2 (:mod:`~zincassay.io.fcs`, writer :mod:`~zincassay.io.fcs_write`)
  and image stacks (:mod:`~zincassay.io.stacks`: TIFF/OME-TIFF/ImageJ, ND2, CZI, LIF)
- :mod:`zincassay.flow` — flow-cytometry gating shared by the flow assays
- :mod:`zincassay.cfse` — CFSE/CellTrace proliferation: deconvolution into generations, division indices
- :mod:`zincassay.imaging` — FluoZin-3/Zinpyr-1 imaging: registration, segmentation, per-cell [Zn2+]
- :mod:`zincassay.conditions` — donor-paired comparison of zinc conditions, QC table
- :mod:`zincassay.simulate` — simulators with ground truth
- :mod:`zincassay.config`, :mod:`zincassay.samplesheet` — the config and sample-sheet contract
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zincassay")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
