"""HTML pages: sign-up, confirm, preferences, pause/resume, "keep me subscribed", unsubscribe,
erase, and the click redirect of alert emails.

Forms post back to the same path (form-encoded); invalid input re-renders the form with 422 and
messages tied to each field. Every link from an email opens a page whose only button POSTs, since
mail scanners follow GET links.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hwcollab_common.clicks import CLICK_PATH
from hwcollab_common.emails import InvalidEmailError, normalize_email
from hwcollab_common.openapi import page_route_responses
from hwcollab_common.tokens import Purpose, TokenError, TokenExpiredError
from hwcollab_subscriber.dependencies import AppSettings, Limits, Service, SignedLinks
from hwcollab_subscriber.domain import (
    PreferencesChange,
    SignUp,
    Subscriber,
)
from hwcollab_subscriber.handlers import Links, SubscriptionGoneError
from hwcollab_subscriber.rendering import (
    PREFERENCE_FIELDS,
    default_values,
    form_values,
    link_token,
    render,
    render_action,
    render_message,
    subscriber_values,
    validate_form,
    with_token,
)
from hwcollab_subscriber.settings import Settings

router = APIRouter()


# --- sign-up --------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def signup_page(request: Request) -> HTMLResponse:
    return render(
        request,
        "signup.html",
        {"page_title": "Sign up for job alerts", "values": default_values(), "errors": {}},
    )


@router.post("/", response_class=HTMLResponse, include_in_schema=False)
async def signup_submit(request: Request, service: Service, limits: Limits) -> HTMLResponse:
    form = await request.form()
    values = form_values(form, ("email", *PREFERENCE_FIELDS))
    result = validate_form(SignUp, values)
    if isinstance(result, dict):
        return render(
            request,
            "signup.html",
            {"page_title": "Please check the form", "values": values, "errors": result},
            status_code=422,
        )
    limits.sign_up(result.email)
    await service.sign_up(result)
    return render_message(
        request,
        heading="Check your inbox",
        paragraphs=[
            "Thanks! If this address can receive job alerts, we have sent it an email. "
            "Open the link in it and press the button to confirm; until then we send nothing else.",
            "No email after a few minutes? Look in your spam folder, or sign up again.",
        ],
    )


@router.get("/confirm", response_class=HTMLResponse, include_in_schema=False)
async def confirm_page(request: Request, service: Service, links: SignedLinks) -> HTMLResponse:
    token = link_token(request)
    subscriber = await service.lookup(Purpose.CONFIRM, token)
    if subscriber is None:
        raise SubscriptionGoneError
    if subscriber.status in ("active", "paused"):
        return render_message(
            request,
            heading="You are already subscribed",
            paragraphs=["Your address is confirmed; there is nothing more to do."],
            links=[(links.manage(subscriber.subscriber_id), "Change your preferences")],
        )
    hello = f"Hello {subscriber.first_name}! " if subscriber.first_name else ""
    return render_action(
        request,
        heading="Confirm your job alerts",
        paragraphs=[
            f"{hello}Press the button to confirm {subscriber.email} and start getting job alerts."
        ],
        action=with_token("/confirm", token),
        button="Yes, send me job alerts",
    )


@router.post("/confirm", response_class=HTMLResponse, include_in_schema=False)
async def confirm_submit(request: Request, service: Service, links: SignedLinks) -> HTMLResponse:
    subscriber = await service.confirm(link_token(request))
    greeting = f"Thanks, {subscriber.first_name}!" if subscriber.first_name else "Thanks!"
    return render_message(
        request,
        heading="You are subscribed",
        paragraphs=[
            f"{greeting} Your address is confirmed. We will email you openings that match "
            "your preferences; openings that already match are on their way.",
        ],
        links=[(links.manage(subscriber.subscriber_id), "Change your preferences")],
    )


# --- preferences ----------------------------------------------------------------------------------


def _preferences_page(
    request: Request,
    subscriber: Subscriber,
    *,
    token: str,
    values: dict[str, Any],
    errors: dict[str, str],
    links: Links,
    settings: Settings,
    saved: bool = False,
) -> HTMLResponse:
    grace = timedelta(days=settings.sunset_grace_days)
    notice = subscriber.sunset_notice_at
    return render(
        request,
        "preferences.html",
        {
            "page_title": "Your preferences",
            "subscriber": subscriber,
            "token": token,
            "unsubscribe_token": links.token(Purpose.UNSUBSCRIBE, subscriber.subscriber_id),
            "keep_token": links.token(Purpose.KEEP, subscriber.subscriber_id),
            "pause_after": notice + grace if notice else None,
            "values": values,
            "errors": errors,
            "saved": saved,
        },
        status_code=422 if errors else 200,
    )


@router.get("/preferences", response_class=HTMLResponse, include_in_schema=False)
async def preferences_page(
    request: Request, service: Service, links: SignedLinks, settings: AppSettings
) -> HTMLResponse:
    token = link_token(request)
    subscriber = await service.preferences(token)
    return _preferences_page(
        request,
        subscriber,
        token=token,
        values=subscriber_values(subscriber),
        errors={},
        links=links,
        settings=settings,
    )


@router.post("/preferences", response_class=HTMLResponse, include_in_schema=False)
async def preferences_submit(
    request: Request, service: Service, links: SignedLinks, settings: AppSettings
) -> HTMLResponse:
    token = link_token(request)
    form = await request.form()
    values = form_values(form, (*PREFERENCE_FIELDS, "paused"))
    result = validate_form(PreferencesChange, values)
    if isinstance(result, dict):
        subscriber = await service.preferences(token)
        return _preferences_page(
            request,
            subscriber,
            token=token,
            values=values,
            errors=result,
            links=links,
            settings=settings,
        )
    subscriber = await service.change_preferences(token, result)
    return _preferences_page(
        request,
        subscriber,
        token=token,
        values=subscriber_values(subscriber),
        errors={},
        links=links,
        settings=settings,
        saved=True,
    )


@router.get("/preferences/link", response_class=HTMLResponse, include_in_schema=False)
async def link_page(request: Request) -> HTMLResponse:
    return render(
        request,
        "link_request.html",
        {"page_title": "Get a link to your preferences", "values": {"email": None}, "errors": {}},
    )


@router.post("/preferences/link", response_class=HTMLResponse, include_in_schema=False)
async def link_submit(request: Request, service: Service, limits: Limits) -> HTMLResponse:
    form = await request.form()
    values = form_values(form, ("email",))
    email = values["email"] or ""
    errors: dict[str, str] = {}
    try:
        normalize_email(email)
    except InvalidEmailError as error:
        errors["email"] = str(error) if email else "This field is required."
    if errors:
        return render(
            request,
            "link_request.html",
            {"page_title": "Please check the form", "values": values, "errors": errors},
            status_code=422,
        )
    limits.link_request(email)
    await service.request_manage_link(email)
    return render_message(
        request,
        heading="Check your inbox",
        paragraphs=[
            "If this address is subscribed, we have emailed it a link to your preferences."
        ],
    )


# --- pause and resume -----------------------------------------------------------------------------


@router.get("/pause", response_class=HTMLResponse, include_in_schema=False)
async def pause_page(request: Request, service: Service) -> HTMLResponse:
    token = link_token(request)
    subscriber = await service.preferences(token)
    return render_action(
        request,
        heading="Pause your job alerts?",
        paragraphs=[
            f"We keep your preferences for {subscriber.email} and send nothing until you resume."
        ],
        action=with_token("/pause", token),
        button="Pause my alerts",
        secondary_link=(with_token("/preferences", token), "Change my preferences instead"),
    )


@router.post("/pause", response_class=HTMLResponse, include_in_schema=False)
async def pause_submit(request: Request, service: Service) -> HTMLResponse:
    token = link_token(request)
    await service.set_paused(token, paused=True)
    return render_action(
        request,
        heading="Your alerts are paused",
        paragraphs=["We will not email you openings until you resume."],
        action=with_token("/resume", token),
        button="Resume my alerts",
        secondary_link=(with_token("/preferences", token), "Your preferences"),
    )


@router.get("/resume", response_class=HTMLResponse, include_in_schema=False)
async def resume_page(request: Request, service: Service) -> HTMLResponse:
    token = link_token(request)
    await service.preferences(token)
    return render_action(
        request,
        heading="Resume your job alerts?",
        paragraphs=["We will email you matching openings again, as you chose."],
        action=with_token("/resume", token),
        button="Resume my alerts",
    )


@router.post("/resume", response_class=HTMLResponse, include_in_schema=False)
async def resume_submit(request: Request, service: Service) -> HTMLResponse:
    token = link_token(request)
    await service.set_paused(token, paused=False)
    return render_message(
        request,
        heading="Your alerts are back on",
        paragraphs=["We will email you matching openings again."],
        links=[(with_token("/preferences", token), "Your preferences")],
    )


# --- engagement: the click redirect and "keep me subscribed" -------------------------------------


@router.get(
    CLICK_PATH,
    tags=["subscribers"],
    summary="Follow a link of an alert email (records the reader's last engagement)",
    description=(
        "Every opening link in alert, digest and welcome emails points here with a signed "
        "token naming the reader, the opening and the link (its page, or the employer's apply "
        "link). Answers 303 to that target and records when the reader last opened a job from "
        "our email (at most once an hour). The target is never taken from the request. A token "
        "that is not valid answers 400, an expired one (after a year) 410, both with a page "
        "that links to the job board."
    ),
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: {"description": "On to the opening's page or its apply link."},
        400: {"description": "Token not valid (a page).", "content": {"text/html": {}}},
        410: {"description": "Token expired (a page).", "content": {"text/html": {}}},
        **page_route_responses(503),
    },
    openapi_extra={
        "parameters": [
            {
                "name": "token",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": "The click token from the email's link.",
            }
        ]
    },
)
async def click_redirect(request: Request, service: Service, links: SignedLinks) -> Response:
    try:
        click = await service.click(link_token(request))
    except TokenError as error:
        expired = isinstance(error, TokenExpiredError)
        return render_message(
            request,
            heading="This link has expired" if expired else "This link is not valid",
            paragraphs=[
                "This link from one of our emails is too old to follow."
                if expired
                else "We could not read this link; it may have been cut short or changed.",
                "The openings are all on the job board.",
            ],
            status_code=410 if expired else 400,
            links=[(links.job_board, "See the job board")],
        )
    return RedirectResponse(click.target, status_code=303, headers={"Cache-Control": "no-store"})


@router.get("/keep", response_class=HTMLResponse, include_in_schema=False)
async def keep_page(request: Request, service: Service, links: SignedLinks) -> HTMLResponse:
    token = link_token(request)
    subscriber = await service.lookup(Purpose.KEEP, token)
    if subscriber is None:
        raise SubscriptionGoneError
    manage = links.manage(subscriber.subscriber_id)
    if subscriber.status not in ("active", "paused") or not subscriber.awaits_answer:
        return _kept(request, subscriber, manage)
    return render_action(
        request,
        heading="Keep your job alerts?",
        paragraphs=[
            f"Press the button to keep getting job alerts at {subscriber.email}"
            + (" (this also resumes them)." if subscriber.paused_for_inactivity else ".")
        ],
        action=with_token("/keep", token),
        button="Keep me subscribed",
        secondary_link=(manage, "Change my preferences instead"),
    )


@router.post("/keep", response_class=HTMLResponse, include_in_schema=False)
async def keep_submit(request: Request, service: Service, links: SignedLinks) -> HTMLResponse:
    subscriber = await service.keep(link_token(request))
    return _kept(request, subscriber, links.manage(subscriber.subscriber_id))


def _kept(request: Request, subscriber: Subscriber, manage_url: str) -> HTMLResponse:
    if subscriber.status == "paused":
        paragraphs = ["Your alerts are paused, as you chose; resume them on your preferences page."]
    elif subscriber.status == "active":
        paragraphs = ["Thanks! We will keep emailing you openings that match your preferences."]
    else:
        paragraphs = ["This subscription has ended. You can sign up again at any time."]
    return render_message(
        request,
        heading="You are still subscribed" if subscriber.status == "active" else "Nothing to keep",
        paragraphs=paragraphs,
        links=[(manage_url, "Your preferences")],
    )


# --- unsubscribe and erasure ----------------------------------------------------------------------


@router.get("/unsubscribe", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe_page(request: Request, service: Service) -> HTMLResponse:
    token = link_token(request)
    subscriber = await service.lookup(Purpose.UNSUBSCRIBE, token)
    if subscriber is None or subscriber.status == "unsubscribed":
        return _unsubscribed(request)
    return render_action(
        request,
        heading="Unsubscribe from job alerts?",
        paragraphs=["We will stop sending you job alerts at once, including any not yet sent."],
        action=with_token("/unsubscribe", token),
        button="Unsubscribe",
    )


@router.post(
    "/unsubscribe",
    response_class=HTMLResponse,
    tags=["subscribers"],
    summary="Unsubscribe (RFC 8058 one-click; publishes subscriber.unsubscribed)",
    description=(
        "The target of the `List-Unsubscribe` header: a form-encoded POST with body "
        "`List-Unsubscribe=One-Click` (the page's button posts without it). Idempotent; always "
        "200 with a confirmation page for a valid token. `GET /unsubscribe?token=` only shows "
        "the button."
    ),
    responses={
        400: {"description": "Token not valid (a page).", "content": {"text/html": {}}},
        401: {"description": "Token expired (a page).", "content": {"text/html": {}}},
        **page_route_responses(413, 503),
    },
    openapi_extra={
        "parameters": [
            {
                "name": "token",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": "The unsubscribe token from the email's link.",
            }
        ],
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"List-Unsubscribe": {"type": "string"}},
                    },
                    "example": {"List-Unsubscribe": "One-Click"},
                }
            }
        },
    },
)
async def unsubscribe_submit(request: Request, service: Service) -> HTMLResponse:
    """The page's button and RFC 8058 one-click (``List-Unsubscribe=One-Click``) alike."""
    token = link_token(request)
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    await service.unsubscribe(token, reason="one_click" if one_click else "page")
    return _unsubscribed(request)


def _unsubscribed(request: Request) -> HTMLResponse:
    return render_message(
        request,
        heading="You are unsubscribed",
        paragraphs=[
            "We will not send you any more job alerts. Changed your mind? You can sign up again "
            "at any time."
        ],
        links=[("/", "Sign up again")],
    )


@router.get("/erase", response_class=HTMLResponse, include_in_schema=False)
async def erase_page(request: Request, links: SignedLinks) -> HTMLResponse:
    token = link_token(request)
    links.verify(Purpose.MANAGE, token)
    return render_action(
        request,
        heading="Delete your data?",
        paragraphs=[
            "We will delete your address, name and preferences and stop all mail. "
            "This cannot be undone."
        ],
        action=with_token("/erase", token),
        button="Delete my data",
        secondary_link=(with_token("/preferences", token), "Keep my subscription"),
    )


@router.post("/erase", response_class=HTMLResponse, include_in_schema=False)
async def erase_submit(request: Request, service: Service) -> HTMLResponse:
    await service.erase(link_token(request))
    return render_message(
        request,
        heading="Your data is deleted",
        paragraphs=["We have deleted your address, name and preferences."],
        links=[("/", "Sign up again")],
    )
