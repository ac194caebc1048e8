"""What the notifier's routes receive: its settings, ports and use cases, each behind a
dependency that ``create_app`` answers and a test replaces through ``overrides``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka import KafkaBroker

from hwcollab_common.bearer import require_bearer
from hwcollab_common.clock import Clock
from hwcollab_common.composition import from_state
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier.bounce_records import BounceRecords
from hwcollab_notifier.digests import DigestRunner
from hwcollab_notifier.index_sync import ReplicaIndex
from hwcollab_notifier.operations import Operations
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings

bearer = HTTPBearer(
    scheme_name="OperatorToken", description="The operators' `ADMIN_TOKEN`.", auto_error=False
)


get_settings = from_state("settings", Settings)
get_runtime = from_state("runtime", ServiceRuntime)
get_repository = from_state("repository", NotifierRepository)
get_digests = from_state("digests", DigestRunner)
get_operations = from_state("operations", Operations)
get_index = from_state("index", ReplicaIndex)
get_bounce_records = from_state("bounce_records", BounceRecords)


AppSettings = Annotated[Settings, Depends(get_settings)]
Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
Repository = Annotated[NotifierRepository, Depends(get_repository)]
Digests = Annotated[DigestRunner, Depends(get_digests)]
AdminOperations = Annotated[Operations, Depends(get_operations)]
Records = Annotated[BounceRecords, Depends(get_bounce_records)]
Index = Annotated[ReplicaIndex, Depends(get_index)]


def get_clock(runtime: Runtime) -> Clock:
    return runtime.clock


def get_broker(runtime: Runtime) -> KafkaBroker:
    return runtime.broker


AppClock = Annotated[Clock, Depends(get_clock)]
Broker = Annotated[KafkaBroker, Depends(get_broker)]


def require_admin(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """The dependency every admin route takes: a 401 unless the bearer token is ADMIN_TOKEN."""
    require_bearer(credentials, settings.admin_token, what="admin token")
