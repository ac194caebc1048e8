"""What the notifier's routes receive: its settings, ports and use cases, each behind a
dependency that ``create_app`` answers and a test replaces through ``overrides``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka import KafkaBroker

from hwcollab_common.bearer import require_bearer
from hwcollab_common.clock import Clock
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


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def get_repository(request: Request) -> NotifierRepository:
    repository: NotifierRepository = request.app.state.repository
    return repository


def get_digests(request: Request) -> DigestRunner:
    digests: DigestRunner = request.app.state.digests
    return digests


def get_operations(request: Request) -> Operations:
    operations: Operations = request.app.state.operations
    return operations


def get_index(request: Request) -> ReplicaIndex:
    index: ReplicaIndex = request.app.state.index
    return index


def get_bounce_records(request: Request) -> BounceRecords:
    records: BounceRecords = request.app.state.bounce_records
    return records


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
