"""``python -m bench --quick`` runs every benchmark at small sizes, so that the benchmark code
keeps working as the services change. Nothing here looks at how fast anything was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# bench/ is not an installed package: ``python -m bench`` runs it from the repository root.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.__main__ import QUICK_ON_REQUEST  # noqa: E402
from bench.harness import REGISTRY  # noqa: E402
from bench.load import (  # noqa: E402
    ENDPOINTS,
    FULL,
    HEALTH,
    Outcome,
    Sample,
    figures_of,
    summarize,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEOUT = 1200
REQUIRED = {
    "e2e": {"e2e_p50_ms", "e2e_p99_ms"},
    "ingest": {"signups_per_s"},
    "fanout": {
        "emails_per_s",
        "first_email_s",
        "last_email_s",
        "digests_per_s",
        "mongodb_commands_per_email",
        "mongodb_commands_per_digest",
        "kafka_records_per_email",
        "throughput_ratio_2_vs_1",
        "notifier_cpu_us_per_email",
    },
    "match": set(),
    "send": {
        "compose_unsigned_cpu_us",
        "compose_signed_rsa_cpu_us",
        "compose_signed_ed25519_cpu_us",
    },
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
    assert (tmp_path / "results" / "fanout_emails.png").stat().st_size > 0
    table = (tmp_path / "RESULTS.md").read_text()
    assert all(f"## {name}" in table for name in REQUIRED)
    assert _committed_results() == committed, "a quick run changed bench/results"


# --- the load benchmark: its stack takes longer to start than this run can spend on it, so the
# quick run skips it (`python -m bench --quick --only load` runs it); its parts are checked here.


def test_the_quick_run_leaves_the_load_benchmark_to_be_asked_for() -> None:
    assert "load" in REGISTRY
    assert "load" in QUICK_ON_REQUEST


def test_the_locustfile_loads_in_locust_with_its_users_and_probes(tmp_path: Path) -> None:
    config = tmp_path / "load.json"
    config.write_text(
        json.dumps(
            {
                "subscriber_url": "http://127.0.0.1:9",
                "employer_url": "http://127.0.0.1:9",
                "notifier_url": "http://127.0.0.1:9",
                "employer_tokens": ["token"],
                "zips": ["01608"],
                "run_id": "test",
                "samples_path": str(tmp_path / "samples.json"),
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "bench/locustfile.py", "--list"],
        cwd=REPO,
        env=os.environ | {"HWCOLLAB_LOAD_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    listed = done.stdout.split()
    users = {"Subscriber", "Seeker", "Employer"}
    assert users | {"SubscriberProbe", "EmployerProbe", "NotifierProbe"} <= set(listed)


def test_load_figures_count_every_failure_and_compare_with_healthz() -> None:
    names = [
        *ENDPOINTS,
        *(HEALTH.format(service=s) for s in ("subscriber", "employer", "notifier")),
    ]
    samples = [
        Sample(name, 1000.0 + i / 10, float(i + 1), None) for name in names for i in range(100)
    ]
    failed = [Sample("POST /api/subscribers", 1005.0, 3_000.0, "ConnectionRefusedError")] * 2
    samples += failed
    outcome = Outcome(summarize(samples), failed, (1.0, 1.0))
    figures = figures_of(outcome, FULL)

    assert figures["error_rate"].value == pytest.approx(2 / len(samples))
    assert figures["error_rate"].met() is False
    assert figures["signup_failures"].value == 2
    assert figures["signup_requests"].value == 102
    assert figures["directory_failures"].met() is True
    # 100 requests of 1..100 ms over 10 s (first sent at 1000.0 s, last answered at 1010.0 s).
    assert figures["directory_p50_ms"].value == pytest.approx(50.5)
    assert figures["directory_p99_ms"].value == pytest.approx(99.01)
    assert figures["directory_rps"].value == pytest.approx(100 / 10.0, rel=1e-3)
    assert figures["directory_p99_ms"].baseline == figures["healthz_employer_p99_ms"].value
    # The failed sign-ups (3 s each) are in the sign-up percentiles, as locust counts them.
    assert figures["signup_p99_ms"].value > 1000
