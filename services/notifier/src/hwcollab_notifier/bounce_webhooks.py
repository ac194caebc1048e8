"""Webhooks through which email providers report bounces and complaints (``/api/webhooks/…``):
Amazon SES through SNS (the SNS signature), Postmark (HTTP Basic credentials on the webhook URL)
and a generic one like listmonk's (a bearer token). Each authenticates before anything is read
into the intake, and each hands its events to the one :class:`BounceIntake` the bounce listener
uses: same rules, same ``bounces`` records with the raw payload. Thin: authenticate, validate,
read the event (:mod:`hwcollab_notifier.provider_reports`), record it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from prometheus_client import Counter
from pydantic import BaseModel, Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from hwcollab_common.composition import from_state
from hwcollab_common.openapi import error_responses
from hwcollab_common.web.security import BodySizeLimit
from hwcollab_notifier.bounce_intake import OUTCOMES, BounceIntake
from hwcollab_notifier.dependencies import AppSettings
from hwcollab_notifier.mail.sns import SnsAuthenticationError, SnsMessage, SnsVerifier
from hwcollab_notifier.provider_reports import (
    SOURCES,
    GenericBounce,
    PostmarkEvent,
    ProviderReport,
    SesEvent,
    Source,
    generic_report,
    postmark_report,
    ses_report,
    text,
)

log = logging.getLogger(__name__)

PREFIX = "/api/webhooks"
REFUSALS = ("disabled", "unauthorized", "invalid")
WEBHOOK_EVENTS = Counter(
    "hwcollab_notifier_bounce_webhooks_total",
    "Provider webhook calls, by source (ses, postmark, generic) and outcome: what the intake did"
    " (hard, soft, complaint, unknown_message, ignored, duplicate), not_a_report (a delivery, an"
    " open), subscribed/unsubscribed (SNS), or why it was refused (disabled, unauthorized,"
    " invalid)",
    ["source", "outcome"],
)
for _source in SOURCES:  # every series on the dashboard from the start, at 0
    for _outcome in (*OUTCOMES, *REFUSALS, "not_a_report"):
        if _outcome != "malformed":  # a webhook's payload is validated, never malformed
            WEBHOOK_EVENTS.labels(_source, _outcome)
WEBHOOK_EVENTS.labels("ses", "subscribed")
WEBHOOK_EVENTS.labels("ses", "unsubscribed")


VALIDATION_ERROR: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "The body is not what the provider sends: a message per field.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    }
}


class WebhookOut(BaseModel):
    outcome: str = Field(
        description="What was done: hard, soft, complaint, unknown_message, ignored, duplicate "
        "(received before), not_a_report, subscribed or unsubscribed (SNS)."
    )
    bounce_id: str | None = Field(
        None, description="The stored report (`GET /api/admin/bounces/{bounce_id}`)."
    )
    detail: str = ""


_SOURCE_OF_PATH: dict[str, Source] = {"ses": "ses", "postmark": "postmark", "bounces": "generic"}


class _CountedRoute(APIRoute):
    """A webhook route that counts the requests it refuses as invalid (422) and answers them
    without echoing what was sent."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        source = _SOURCE_OF_PATH[self.path.rsplit("/", 1)[-1]]

        async def counted(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                WEBHOOK_EVENTS.labels(source, "invalid").inc()
                # The field and the message, not the input: a provider's payload is not echoed
                # back to whoever sent it.
                raise RequestValidationError(
                    [
                        {k: v for k, v in e.items() if k not in ("input", "ctx")}
                        for e in error.errors()
                    ]
                ) from None

        return counted


class OtherRoutesBodyLimit:
    """The notifier's usual body limit for every route but the webhooks, which take larger
    bodies (an SNS message may be 256 KiB) under the app-wide limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._limited = BodySizeLimit(app, max_bytes=max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(PREFIX + "/"):
            await self._app(scope, receive, send)
        else:
            await self._limited(scope, receive, send)


def _refuse(source: Source, reason: str, code: int, detail: str) -> HTTPException:
    WEBHOOK_EVENTS.labels(source, reason).inc()
    headers = None
    if code == 401:
        scheme = {"ses": "SNS-Signature", "postmark": 'Basic realm="postmark"', "generic": "Bearer"}
        headers = {"WWW-Authenticate": scheme[source]}
    return HTTPException(code, detail, headers=headers)


def _invalid(error: ValidationError, *, at: tuple[str, ...]) -> Exception:
    errors = error.errors(include_url=False, include_context=False, include_input=False)
    return RequestValidationError([dict(e) | {"loc": ("body", *at, *e["loc"])} for e in errors])


async def _record(intake: BounceIntake, event: ProviderReport) -> WebhookOut:
    result = await intake.receive_provider_report(event)
    WEBHOOK_EVENTS.labels(event.source, result.outcome).inc()
    return WebhookOut(outcome=result.outcome, bounce_id=result.bounce_id, detail=result.detail)


basic = HTTPBasic(
    scheme_name="PostmarkWebhook",
    description="POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD, set on the webhook URL.",
    auto_error=False,
)
bearer = HTTPBearer(
    scheme_name="BounceWebhookToken", description="The `BOUNCE_WEBHOOK_TOKEN`.", auto_error=False
)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


get_intake = from_state("bounce_intake", BounceIntake)


def get_sns_verifier(request: Request) -> SnsVerifier | None:
    """The SNS verifier, or None when the SES webhook is not enabled."""
    verifier: SnsVerifier | None = request.app.state.sns_verifier
    return verifier


Intake = Annotated[BounceIntake, Depends(get_intake)]
Verifier = Annotated[SnsVerifier | None, Depends(get_sns_verifier)]
webhooks_router = APIRouter(
    prefix=PREFIX,
    route_class=_CountedRoute,
    tags=["webhooks"],
    responses=error_responses(404, 413, 503, s404="This webhook is not enabled (BOUNCE_WEBHOOKS)."),
)


def require_enabled(source: Source) -> Callable[..., None]:
    def check(settings: AppSettings) -> None:
        if source not in settings.bounce_webhooks:
            raise _refuse(source, "disabled", 404, "this webhook is not enabled")

    return check


def postmark_caller(
    settings: AppSettings,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
) -> None:
    user = settings.postmark_webhook_user
    password = settings.postmark_webhook_password.get_secret_value()
    # Both compared in full (no early exit on the user), each in constant time.
    right = credentials is not None and (
        _same(credentials.username, user) & _same(credentials.password, password)
    )
    if not right:
        raise _refuse("postmark", "unauthorized", 401, "valid webhook credentials required")


def generic_caller(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = settings.bounce_webhook_token.get_secret_value()
    if credentials is None or not _same(credentials.credentials, token):
        raise _refuse("generic", "unauthorized", 401, "a valid webhook token is required")


@webhooks_router.post(
    "/ses",
    summary="Amazon SES bounce and complaint notifications, through Amazon SNS",
    description="An SNS HTTP(S) subscription posts here (`text/plain` JSON). Each message "
    "is authenticated as AWS documents: its topic must be in SES_SNS_TOPIC_ARNS, and its "
    "signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) must verify with the "
    "certificate at its SigningCertURL, an https URL of an `sns.<region>.amazonaws.com` "
    "host. A SubscriptionConfirmation is confirmed (its SubscribeURL visited); a "
    "Notification's Message is an SES Bounce, Complaint or Delivery event.",
    dependencies=[Depends(require_enabled("ses"))],
    responses=error_responses(
        401, s401="Not signed by Amazon SNS for one of our topics; nothing recorded."
    )
    | VALIDATION_ERROR,
    openapi_extra={
        "requestBody": {
            "required": True,
            # SNS declares text/plain; the body is the same JSON, read whatever the type.
            "content": {"application/json": {"schema": SnsMessage.model_json_schema()}},
        }
    },
)
async def ses(request: Request, intake: Intake, verifier: Verifier) -> WebhookOut:
    raw = await request.body()
    try:
        message = SnsMessage.model_validate_json(raw)
    except ValidationError as error:
        raise _invalid(error, at=()) from None
    assert verifier is not None  # enabled means configured (Settings checks it)
    try:
        await verifier.verify(message)
    except SnsAuthenticationError as error:
        log.warning("refused an SNS message %s: %s", message.MessageId[:100], error)
        raise _refuse("ses", "unauthorized", 401, str(error)) from None
    if message.Type == "SubscriptionConfirmation":
        try:
            await verifier.confirm_subscription(message)
        except SnsAuthenticationError as error:
            raise _refuse("ses", "unauthorized", 401, str(error)) from None
        except ConnectionError as error:
            log.warning("SNS subscription to %s not confirmed: %s", message.TopicArn, error)
            raise HTTPException(503, "the subscription could not be confirmed now") from None
        log.info("confirmed the SNS subscription to %s", message.TopicArn)
        WEBHOOK_EVENTS.labels("ses", "subscribed").inc()
        return WebhookOut(outcome="subscribed")
    if message.Type == "UnsubscribeConfirmation":
        log.warning("the SNS subscription to %s was removed", message.TopicArn)
        WEBHOOK_EVENTS.labels("ses", "unsubscribed").inc()
        return WebhookOut(outcome="unsubscribed")
    try:
        event = SesEvent.model_validate_json(message.Message)
    except ValidationError as error:
        raise _invalid(error, at=("Message",)) from None
    report = ses_report(event, raw=raw)
    if report is None:
        WEBHOOK_EVENTS.labels("ses", "not_a_report").inc()
        return WebhookOut(outcome="not_a_report", detail=f"an SES {text(event.type)} event")
    return await _record(intake, report)


@webhooks_router.post(
    "/postmark",
    summary="Postmark Bounce and SpamComplaint webhooks",
    description="Set the webhook URL with the credentials "
    "(`https://USER:PASSWORD@…/api/webhooks/postmark`). Bounce types: HardBounce and "
    "BadEmailAddress are hard; SoftBounce, Transient, DnsError, Blocked and "
    "SpamNotification soft; SpamComplaint a complaint; the others are kept, not acted on. "
    "Our email is found by `Metadata.message_id` or the Message-ID in `Headers`. Other "
    "record types (Delivery, Open, Click) are acknowledged and not stored.",
    dependencies=[Depends(require_enabled("postmark")), Depends(postmark_caller)],
    responses=error_responses(
        400, 401, s401="Wrong or missing webhook credentials; nothing recorded."
    ),
)
async def postmark(body: PostmarkEvent, request: Request, intake: Intake) -> WebhookOut:
    report = postmark_report(body, raw=await request.body())
    if report is None:
        WEBHOOK_EVENTS.labels("postmark", "not_a_report").inc()
        return WebhookOut(outcome="not_a_report", detail=f"a {text(body.RecordType)} record")
    return await _record(intake, report)


@webhooks_router.post(
    "/bounces",
    summary="A bounce or complaint from any system (generic, like listmonk's)",
    description="Acted on only when `message_id` names an email we sent to `email`; "
    "otherwise kept and counted as unknown_message.",
    dependencies=[Depends(require_enabled("generic")), Depends(generic_caller)],
    responses=error_responses(400, 401, s401="A valid webhook token is required."),
)
async def generic(body: GenericBounce, request: Request, intake: Intake) -> WebhookOut:
    return await _record(intake, generic_report(body, raw=await request.body()))
