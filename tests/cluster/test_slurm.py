"""The example workflow (donor D1 of every assay, the cytokine standards and the ELISA plate: every
rule) on a real single-node SLURM and locally, tables compared byte for byte (tests/cluster/run_slurm.sh).

Runs when Debian's slurm-wlm and munge are installed and the tests run as root (``.ci/run``
installs them on CI); skips otherwise. It takes about 3 minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("run_slurm.sh")


@pytest.mark.slurm
def test_example_workflow_on_slurm_matches_a_local_run():
    if os.geteuid() != 0:
        pytest.skip("needs root to start munged, slurmctld and slurmd")
    if not (shutil.which("slurmctld") and shutil.which("munged")):
        pytest.skip("Debian's slurm-wlm and munge are not installed (apt-get install slurm-wlm munge)")
    run = subprocess.run(["bash", str(SCRIPT), sys.executable], capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert "tables byte-identical to the local run" in run.stdout
    # the daemons were stopped by their PIDs
    line = next(x for x in run.stdout.splitlines() if x.startswith("daemons stopped:"))
    pids = [int(p) for p in line.split(":", 1)[1].split("(")[0].split()]
    assert len(pids) == 3
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
