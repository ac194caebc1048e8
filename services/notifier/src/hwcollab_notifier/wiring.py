"""The notifier's use cases, built from their ports in one place (the app and its tests)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from hwcollab_common.clicks import ClickLinks
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tokens import LinkSigner
from hwcollab_notifier.announce import Announcer
from hwcollab_notifier.delivery import Deliveries, Mailer, Postman
from hwcollab_notifier.digests import DigestRunner
from hwcollab_notifier.handlers import ReadModel
from hwcollab_notifier.index_sync import ReplicaIndex
from hwcollab_notifier.jobs import JobQueue
from hwcollab_notifier.mail import BounceAddresses, DkimSigner, EmailComposer
from hwcollab_notifier.operations import Operations
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UseCases:
    announcer: Announcer
    deliveries: Deliveries
    read_model: ReadModel
    digests: DigestRunner
    operations: Operations


def dkim_signer_for(settings: Settings, runtime: ServiceRuntime) -> DkimSigner | None:
    """The DKIM signer of the settings' key, or None when no key is set (development)."""
    key = settings.dkim_key()
    if key is None:
        log.info("DKIM signing is off (no DKIM_PRIVATE_KEY): emails go out unsigned")
        return None
    signer = DkimSigner(
        domain=settings.dkim_signing_domain,
        selector=settings.dkim_selector,
        key=key,
        clock=runtime.clock,
    )
    log.info("DKIM signing every email for %s (%s)", signer.domain, signer.dns_name)
    return signer


def bounce_addresses_for(settings: Settings) -> BounceAddresses | None:
    """Per-message bounce addresses (VERP) when BOUNCE_DOMAIN is set."""
    if settings.bounce_domain is None:
        return None
    return BounceAddresses(
        domain=settings.bounce_domain,
        key=settings.link_signing_key.get_secret_value(),
        fallback_keys=settings.fallback_keys,
    )


def composer_for(settings: Settings, runtime: ServiceRuntime) -> EmailComposer:
    return EmailComposer(
        mail_from=settings.mail_from,
        postal_address=settings.postal_address,
        list_id=settings.list_id,
        subscriber_public_url=settings.subscriber_public_url,
        employer_public_url=settings.employer_public_url,
        message_id_domain=settings.message_id_domain,
        clock=runtime.clock,
        signer=dkim_signer_for(settings, runtime),
        bounces=bounce_addresses_for(settings),
        clicks=click_links_for(settings, runtime),
        postmark_metadata="postmark" in settings.bounce_webhooks,
    )


def click_links_for(settings: Settings, runtime: ServiceRuntime) -> ClickLinks:
    """Links to openings through the subscriber service's click redirect."""
    signer = LinkSigner(
        settings.link_signing_key.get_secret_value(),
        fallback_keys=settings.fallback_keys,
        clock=runtime.clock,
    )
    return ClickLinks(
        signer,
        subscriber_public_url=settings.subscriber_public_url,
        employer_public_url=settings.employer_public_url,
    )


def wire_use_cases(
    *,
    runtime: ServiceRuntime,
    settings: Settings,
    repository: NotifierRepository,
    index: ReplicaIndex,
    jobs: JobQueue,
    mailer: Mailer,
    composer: EmailComposer,
) -> UseCases:
    postman = Postman(
        clock=runtime.clock,
        store=repository,
        mailer=mailer,
        lease=timedelta(seconds=settings.send_lease_seconds),
        max_attempts=settings.delivery_max_attempts,
    )
    announcer = Announcer(
        runtime=runtime,
        repository=repository,
        index=index,
        jobs=jobs,
        batch_size=settings.delivery_batch_size,
    )
    deliveries = Deliveries(
        clock=runtime.clock,
        signer=runtime.signer,
        store=repository,
        composer=composer,
        postman=postman,
        settings=settings,
        welcome_matches=announcer.welcome_matches,
    )
    read_model = ReadModel(
        runtime=runtime,
        repository=repository,
        index=index,
        announcer=announcer,
        jobs=jobs,
    )
    digests = DigestRunner(
        clock=runtime.clock,
        store=repository,
        composer=composer,
        postman=postman,
        deliveries=deliveries,
        settings=settings,
    )
    operations = Operations(
        runtime=runtime, repository=repository, jobs=jobs, deliveries=deliveries, settings=settings
    )
    return UseCases(announcer, deliveries, read_model, digests, operations)
