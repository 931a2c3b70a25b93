"""Readers of raw files: :mod:`zincassay.io.fcs` (flow cytometry, with :mod:`~zincassay.io.fcs_write`)
and :mod:`zincassay.io.stacks` (image stacks). The file types each assay accepts are named here once."""

#: Flow-cytometry list-mode files.
FCS_SUFFIXES = (".fcs", ".lmd")
#: TIFF stacks (ImageJ, OME-TIFF, plain multi-page).
TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff")
#: Vendor image formats: suffix -> (module that reads it, zincassay extra that installs it).
VENDOR_EXTRAS = {".nd2": ("nd2", "nd2"), ".czi": ("czifile", "czi"), ".lif": ("readlif.reader", "lif")}
#: Every image suffix zincassay reads.
IMAGE_SUFFIXES = (".tif", ".tiff", *VENDOR_EXTRAS)
