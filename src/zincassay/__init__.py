"""zincassay: analysis of zinc-imaging and CFSE-proliferation assays.

The science lives in plain functions over numpy arrays and pandas frames:

- :mod:`zincassay.io.fcs` — FCS 2.0–3.2 reader (and :mod:`zincassay.io.fcs_write`, a writer)
- :mod:`zincassay.cfse` — gating, generation deconvolution and division indices
- :mod:`zincassay.simulate` — simulators with ground truth for both assays
- :mod:`zincassay.config`, :mod:`zincassay.samplesheet` — the config and sample-sheet contract
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zincassay")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
