"""The notifier's Prometheus metrics (events consumed are counted by the shared consumer)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MATCH_SECONDS = Histogram(
    "hwcollab_notifier_match_seconds",
    "Time to find the subscribers an opening matches",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
MATCHES = Counter(
    "hwcollab_notifier_matches_total", "New (subscriber, opening) pairs recorded", ["channel"]
)
EMAILS_SENT = Counter("hwcollab_notifier_emails_sent_total", "Emails accepted by SMTP", ["kind"])
EMAILS_FAILED = Counter(
    "hwcollab_notifier_emails_failed_total", "Emails given up", ["kind", "permanent"]
)
EMAILS_RETRIED = Counter(
    "hwcollab_notifier_emails_retried_total",
    "Emails put back for a later attempt after the sender's retries ran out",
    ["kind"],
)
EMAILS_SKIPPED = Counter(
    "hwcollab_notifier_emails_skipped_total",
    "Deliveries not sent at send time (status, suppression, closed opening, already sent)",
    ["kind", "reason"],
)
DIGEST_SIZE = Histogram(
    "hwcollab_notifier_digest_openings",
    "Openings in each digest sent",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250),
)
CONSUMER_LAG = Gauge(
    "hwcollab_notifier_consumer_lag", "Messages not yet consumed by a group", ["group", "topic"]
)
CLAIM_RENEWAL_FAILURES = Counter(
    "hwcollab_notifier_claim_renewal_failures_total",
    "Renewals of a sending batch's claims that failed (the batch goes on; a lease that runs out"
    " lets another sender take the email over)",
)
SWEPT = Counter("hwcollab_notifier_swept_total", "Deliveries published again by the sweeper")
BOUNCES = Counter(
    "hwcollab_notifier_bounces_total",
    "Bounce and complaint reports received, by what was done: hard (address suppressed, subscriber"
    " bounced), soft (counted), complaint (suppressed, unsubscribed), unknown_message (names no"
    " email we sent), malformed, ignored (a delay warning, an erased subscriber)",
    ["outcome"],
)
BOUNCES_REFUSED = Counter(
    "hwcollab_notifier_bounces_refused_total",
    "SMTP commands the bounce listener refused, by reason",
    ["reason"],
)
