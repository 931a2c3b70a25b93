"""Across conditions: donor-aware statistics (stats.py), the QC table (qc.py), figures (figures.py)
and provenance (provenance.py)."""
