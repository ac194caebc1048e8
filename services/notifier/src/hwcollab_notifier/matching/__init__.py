"""Matching openings to subscribers (SPEC §3): the rule's data, its reference, and the index."""

from hwcollab_notifier.matching.criteria import (
    OpeningCriteria,
    SubscriberCriteria,
    hourly_pay,
    subscriber_criteria,
)
from hwcollab_notifier.matching.index import MatchIndex, MatchResult

__all__ = [
    "MatchIndex",
    "MatchResult",
    "OpeningCriteria",
    "SubscriberCriteria",
    "hourly_pay",
    "subscriber_criteria",
]
