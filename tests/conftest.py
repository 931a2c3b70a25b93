"""Shared test fixtures. Real-data tests use ../shared/data and skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZINCASSAY_SHARED", REPO.parent / "shared"))
FCS_CORPUS = SHARED / "data" / "fcs-corpus"
IMAGING_DATA = SHARED / "data" / "imaging"


def corpus_files() -> list[Path]:
    if not FCS_CORPUS.is_dir():
        return []
    return sorted(
        p for p in FCS_CORPUS.rglob("*")
        if p.is_file() and p.suffix.lower() in (".fcs", ".lmd")
    )


@pytest.fixture
def fcs_corpus() -> Path:
    if not FCS_CORPUS.is_dir():
        pytest.skip("../shared/data/fcs-corpus is absent")
    return FCS_CORPUS
