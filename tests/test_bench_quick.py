"""``python -m bench --quick`` runs every benchmark at small sizes, so that the benchmark code
keeps working as the services change. Nothing here looks at how fast anything was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 1200
REQUIRED = {
    "e2e": {"e2e_p50_ms", "e2e_p99_ms"},
    "ingest": {"signups_per_s"},
    "scaling": {"throughput_ratio_2_vs_1"},
    "match": set(),
    "send": set(),
}


def _committed_results() -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in (REPO / "bench" / "results").glob("*")}


@pytest.mark.timeout(TIMEOUT + 60)
def test_every_benchmark_runs_quick_into_its_own_directory(tmp_path: Path) -> None:
    committed = _committed_results()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"

    for name, figures in REQUIRED.items():
        document = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert document["benchmark"] == name
        assert document["figures"], f"{name} wrote no figures"
        assert figures <= set(document["figures"]), f"{name} lacks {figures}"
        for key in figures:
            assert document["figures"][key]["value"] is not None, f"{name} {key} is not a number"
    table = (tmp_path / "RESULTS.md").read_text()
    assert all(f"## {name}" in table for name in REQUIRED)
    assert _committed_results() == committed, "a quick run changed bench/results"
