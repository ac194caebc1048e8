"""The subscriber service as operators run it (uvicorn factory, configured by environment)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from hwcollab_testing.plugin import ServiceStarter
from hwcollab_testing.processes import free_port
from hwcollab_testing.waiting import eventually_sync

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_service_process_serves_pages_api_and_limits(
    service_process: ServiceStarter, kafka_bootstrap: str, mongo_url: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    running = service_process(
        "subscriber",
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "MONGODB_URL": mongo_url,
            "MONGODB_DATABASE": f"test_subscriber_{uuid.uuid4().hex[:10]}",
            "SUBSCRIBER_PUBLIC_URL": url,
            "SIGNUP_RATE_LIMIT": "3/minute",
            "SIGNUP_ADDRESS_RATE_LIMIT": "100/minute",
        },
        port=port,
    )
    with httpx.Client(base_url=running.url, timeout=20.0) as client:
        eventually_sync(
            lambda: client.get("/readyz").status_code == 200,
            timeout=45,
            what="the subscriber service ready",
        )
        home = client.get("/")
        assert home.status_code == 200
        assert "Stay informed" in home.text
        assert client.get("/assets/hwcollab/hwcollab.css").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/metrics").status_code == 200

        answers = [
            client.post(
                "/api/subscribers",
                json={"email": f"p{i}@example.org", "roles": ["care_manager"], "zip": "01608"},
            )
            for i in range(4)
        ]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert int(answers[-1].headers["Retry-After"]) >= 1
        metrics = client.get("/metrics").text
        counter = "hwcollab_subscriber_events_committed_total"
        label = 'event_type="subscriber.confirmation_requested"'
        assert f"{counter}{{{label}}} 3.0" in metrics
        invalid = client.get("/confirm", params={"token": "forged.token.value"})
        assert invalid.status_code == 400
        assert "This link is not valid" in invalid.text
