"""How employers, openings and API keys are stored as MongoDB documents (and read back).

Places are kept twice: as plain fields for display and as a GeoJSON point (``location``, longitude
first) for the 2dsphere indexes.
"""

from __future__ import annotations

from hwcollab_common.mongo import Document
from hwcollab_employer.commands import OpeningFields
from hwcollab_employer.domain import Employer, Opening, Place
from hwcollab_employer.idempotency import IdempotencyClaim, IdempotencyRecord, StoredAnswer
from hwcollab_employer.ports import ApiKeyRecord, PasswordResetRecord


def point(place: Place) -> Document:
    return {"type": "Point", "coordinates": [place.lon, place.lat]}


def place_document(place: Place) -> Document:
    return {
        "street": place.street,
        "city": place.city,
        "state": place.state,
        "zip": place.zip,
        "lat": place.lat,
        "lon": place.lon,
    }


def place_from(document: Document | None) -> Place | None:
    if not document:
        return None
    return Place(
        street=document.get("street"),
        city=document["city"],
        state=document["state"],
        zip=document["zip"],
        lat=document["lat"],
        lon=document["lon"],
    )


def employer_document(employer: Employer) -> Document:
    return {
        "_id": employer.employer_id,
        "version": employer.version,
        "organization_name": employer.organization_name,
        "contact_email": employer.contact_email,
        "password_hash": employer.password_hash,
        "website": employer.website,
        "description": employer.description,
        "phone": employer.phone,
        "place": place_document(employer.place),
        "location": point(employer.place),
        "settings": list(employer.settings),
        "status": employer.status,
        "created_at": employer.created_at,
        "updated_at": employer.updated_at,
        "approved_at": employer.approved_at,
        "moderation_reason": employer.moderation_reason,
        "session_version": employer.session_version,
    }


def employer_from(document: Document) -> Employer:
    place = place_from(document["place"])
    assert place is not None
    return Employer(
        employer_id=document["_id"],
        version=document["version"],
        organization_name=document["organization_name"],
        contact_email=document["contact_email"],
        password_hash=document["password_hash"],
        website=document.get("website"),
        description=document.get("description") or "",
        phone=document.get("phone"),
        place=place,
        settings=tuple(document.get("settings", ())),
        status=document["status"],
        created_at=document["created_at"],
        updated_at=document["updated_at"],
        approved_at=document.get("approved_at"),
        moderation_reason=document.get("moderation_reason"),
        session_version=document.get("session_version", 1),
    )


def opening_document(opening: Opening) -> Document:
    document: Document = {
        "_id": opening.opening_id,
        "employer_id": opening.employer_id,
        "version": opening.version,
        "organization_name": opening.organization_name,
        "employer_approved": opening.employer_approved,
        **opening.fields.model_dump(mode="python"),
        "place": place_document(opening.place) if opening.place else None,
        "posted_at": opening.posted_at,
        "expires_at": opening.expires_at,
        "updated_at": opening.updated_at,
        "status": opening.status,
        "closed_at": opening.closed_at,
        "close_reason": opening.close_reason,
        "takedown_reason": opening.takedown_reason,
    }
    # Remote openings without a ZIP have no location; the 2dsphere index skips them.
    if opening.place:
        document["location"] = point(opening.place)
    return document


def opening_from(document: Document) -> Opening:
    fields = OpeningFields.model_validate(
        {name: document.get(name) for name in OpeningFields.model_fields}
    )
    return Opening(
        opening_id=document["_id"],
        employer_id=document["employer_id"],
        version=document["version"],
        organization_name=document["organization_name"],
        employer_approved=document["employer_approved"],
        fields=fields,
        place=place_from(document.get("place")),
        posted_at=document["posted_at"],
        expires_at=document["expires_at"],
        updated_at=document["updated_at"],
        status=document["status"],
        closed_at=document.get("closed_at"),
        close_reason=document.get("close_reason"),
        notified=document.get("notified", 0),
        takedown_reason=document.get("takedown_reason"),
    )


def api_key_from(document: Document) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=document["_id"],
        employer_id=document["employer_id"],
        name=document["name"],
        prefix=document["prefix"],
        secret_hash=document["secret_hash"],
        created_at=document["created_at"],
        revoked_at=document.get("revoked_at"),
        last_used_at=document.get("last_used_at"),
    )


def idempotency_id(principal: str, key: str) -> str:
    # A key is printable ASCII, so a line break cannot occur in either part.
    return f"{principal}\n{key}"


def idempotency_document(record: IdempotencyRecord) -> Document:
    claim = record.claim
    return {
        "_id": idempotency_id(claim.principal, claim.key),
        "principal": claim.principal,
        "key": claim.key,
        "fingerprint": claim.fingerprint,
        "status": record.answer.status,
        "body": record.answer.body,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    }


def idempotency_from(document: Document) -> IdempotencyRecord:
    return IdempotencyRecord(
        claim=IdempotencyClaim(
            principal=document["principal"],
            key=document["key"],
            fingerprint=document["fingerprint"],
        ),
        answer=StoredAnswer(status=document["status"], body=dict(document["body"])),
        created_at=document["created_at"],
        expires_at=document["expires_at"],
    )


def password_reset_document(record: PasswordResetRecord) -> Document:
    return {
        "_id": record.token_hash,
        "employer_id": record.employer_id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    }


def password_reset_from(document: Document) -> PasswordResetRecord:
    return PasswordResetRecord(
        token_hash=document["_id"],
        employer_id=document["employer_id"],
        created_at=document["created_at"],
        expires_at=document["expires_at"],
    )
