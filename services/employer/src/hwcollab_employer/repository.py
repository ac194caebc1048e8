"""MongoDB storage of employers, openings, API keys and reach (database ``hwcollab_employer``).

Geo searches use 2dsphere indexes and the ``$geoNear`` aggregation stage (which sorts by distance);
coordinates are GeoJSON points, distances come back in miles.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from hwcollab_common.geo import MILES_PER_MONGODB_METER, mongodb_meters
from hwcollab_common.mongo import Document
from hwcollab_employer.documents import (
    api_key_from,
    employer_document,
    employer_from,
    idempotency_document,
    idempotency_from,
    idempotency_id,
    opening_document,
    opening_from,
    password_reset_document,
    password_reset_from,
)
from hwcollab_employer.domain import ConflictError, Employer, Opening
from hwcollab_employer.idempotency import IdempotencyRecord
from hwcollab_employer.listing import (
    BoardQuery,
    DirectoryQuery,
    EmployerListing,
    OpeningListing,
    Page,
    offset_of,
)
from hwcollab_employer.ports import (
    ApiKeyRecord,
    DuplicateEmailError,
    DuplicateExternalIdError,
    IdempotencyKeyTakenError,
    PasswordResetRecord,
)

log = logging.getLogger(__name__)

# The session of the transaction in progress; None reads outside any transaction.
Session = AsyncClientSession | None

# IndexOptionsConflict, IndexKeySpecsConflict: an equivalent index is already there.
INDEX_EXISTS_CODES = frozenset({85, 86})
# Reach once kept a document per (opening, subscriber) pair; counts now come from the events.
OBSOLETE_REACH = "reach"
EXTERNAL_ID_INDEX = "employer_id_1_external_id_1"


def _external_id_clash(error: DuplicateKeyError) -> bool:
    return EXTERNAL_ID_INDEX in str(error) or "external_id" in str(error.details or "")


def _geo_near(*, near: Any, radius_miles: int, query: Document) -> Document:
    return {
        "$geoNear": {
            "near": {"type": "Point", "coordinates": [near.lon, near.lat]},
            "distanceField": "distance_miles",
            # On the product's sphere: the distances the notifier matches on, to the hundredth.
            "distanceMultiplier": MILES_PER_MONGODB_METER,
            "maxDistance": mongodb_meters(radius_miles),
            "spherical": True,
            "query": query,
        }
    }


class MongoEmployerRepository:
    """The collections; a method given a session runs in its transaction (see
    :class:`~hwcollab_employer.unit_of_work.MongoEmployerTransaction`)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._db = database
        self._employers = database["employers"]
        self._openings = database["openings"]
        self._api_keys = database["api_keys"]
        self._idempotency = database["idempotency_keys"]
        self._password_resets = database["password_resets"]

    async def ensure_indexes(self) -> None:
        """Create the indexes that do not exist yet (so that a restart never trips on them)."""
        wanted = [
            (
                self._employers,
                [
                    IndexModel([("contact_email", ASCENDING)], unique=True),
                    IndexModel([("location", "2dsphere")]),
                    IndexModel([("status", ASCENDING), ("organization_name", ASCENDING)]),
                ],
            ),
            (
                self._openings,
                [
                    IndexModel([("location", "2dsphere")]),
                    IndexModel([("employer_id", ASCENDING), ("posted_at", DESCENDING)]),
                    IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)]),
                    # An employer's own reference is unique among its openings (when it has one).
                    IndexModel(
                        [("employer_id", ASCENDING), ("external_id", ASCENDING)],
                        name=EXTERNAL_ID_INDEX,
                        unique=True,
                        partialFilterExpression={"external_id": {"$type": "string"}},
                    ),
                ],
            ),
            # Kept answers to idempotent posts go 24 hours after they were given.
            (self._idempotency, [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)]),
            (self._api_keys, [IndexModel([("employer_id", ASCENDING)])]),
            # Reset links go 30 minutes after they were made. Only read by _id; removing an
            # employer's others scans this small collection rather than pay for an index.
            (
                self._password_resets,
                [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
            ),
        ]
        for collection, indexes in wanted:
            existing = set(await collection.index_information())
            missing = [index for index in indexes if index.document["name"] not in existing]
            if not missing:
                continue
            try:
                await collection.create_indexes(missing)
            except OperationFailure as error:
                if error.code not in INDEX_EXISTS_CODES:
                    raise
                # Another replica created it at the same moment.
                log.info("index of %s already exists: %s", collection.name, error)
        # The pairs of the old reach records cost every email a read and a write; nothing reads
        # them now (dropping a collection that is not there is a no-op).
        await self._db.drop_collection(OBSOLETE_REACH)

    # --- employers ---------------------------------------------------------------------------

    async def add_employer(self, employer: Employer, *, session: Session) -> None:
        document = employer_document(employer) | {"open_openings": 0, "open_roles": []}
        try:
            await self._employers.insert_one(document, session=session)
        except DuplicateKeyError as error:
            raise DuplicateEmailError(employer.contact_email) from error

    async def get_employer(self, employer_id: str, *, session: Session = None) -> Employer | None:
        document = await self._employers.find_one({"_id": employer_id}, session=session)
        return employer_from(document) if document else None

    async def employer_by_email(self, email: str, *, session: Session = None) -> Employer | None:
        document = await self._employers.find_one({"contact_email": email}, session=session)
        return employer_from(document) if document else None

    async def save_employer(self, employer: Employer, *, session: Session) -> None:
        changes = employer_document(employer)
        del changes["_id"]
        try:
            await self._employers.update_one(
                {"_id": employer.employer_id}, {"$set": changes}, session=session
            )
        except DuplicateKeyError as error:  # a new contact email another account has
            raise DuplicateEmailError(employer.contact_email) from error

    async def employers_with_status(self, status: str, *, limit: int) -> list[Employer]:
        cursor = self._employers.find({"status": status}).sort("created_at", ASCENDING).limit(limit)
        return [employer_from(document) async for document in cursor]

    # --- password resets ---------------------------------------------------------------------

    async def add_password_reset(self, record: PasswordResetRecord, *, session: Session) -> None:
        await self._password_resets.insert_one(password_reset_document(record), session=session)

    async def password_reset(self, token_hash: str, *, now: datetime) -> PasswordResetRecord | None:
        # A record past expires_at that the TTL monitor has not removed yet counts as gone.
        document = await self._password_resets.find_one(
            {"_id": token_hash, "expires_at": {"$gt": now}}
        )
        return password_reset_from(document) if document else None

    async def take_password_reset(
        self, token_hash: str, *, now: datetime, session: Session
    ) -> PasswordResetRecord | None:
        document = await self._password_resets.find_one_and_delete(
            {"_id": token_hash, "expires_at": {"$gt": now}}, session=session
        )
        return password_reset_from(document) if document else None

    async def drop_password_resets(self, employer_id: str, *, session: Session) -> None:
        await self._password_resets.delete_many({"employer_id": employer_id}, session=session)

    # --- openings ----------------------------------------------------------------------------

    async def add_opening(self, opening: Opening, *, session: Session) -> None:
        try:
            await self._openings.insert_one(
                opening_document(opening) | {"notified": 0}, session=session
            )
        except DuplicateKeyError as error:
            if _external_id_clash(error):
                raise DuplicateExternalIdError(opening.fields.external_id) from error
            raise

    async def opening_by_external_id(
        self, employer_id: str, external_id: str, *, session: Session = None
    ) -> Opening | None:
        document = await self._openings.find_one(
            {"employer_id": employer_id, "external_id": external_id}, session=session
        )
        return opening_from(document) if document else None

    async def get_opening(self, opening_id: str, *, session: Session = None) -> Opening | None:
        document = await self._openings.find_one({"_id": opening_id}, session=session)
        return opening_from(document) if document else None

    async def save_opening(
        self, opening: Opening, *, previous_version: int, session: Session
    ) -> None:
        document = opening_document(opening)
        del document["_id"]
        update: Document = {"$set": document}
        if "location" not in document:
            update["$unset"] = {"location": ""}
        try:
            result = await self._openings.update_one(
                {"_id": opening.opening_id, "version": previous_version}, update, session=session
            )
        except DuplicateKeyError as error:
            if _external_id_clash(error):
                raise DuplicateExternalIdError(opening.fields.external_id) from error
            raise
        if result.matched_count != 1:
            raise ConflictError("the opening was changed meanwhile; reload and try again")

    async def openings_of(
        self, employer_id: str, *, open_only: bool = False, session: Session = None
    ) -> list[Opening]:
        query: Document = {"employer_id": employer_id}
        if open_only:
            query["status"] = "open"
        cursor = self._openings.find(query, session=session).sort(
            [("posted_at", DESCENDING), ("_id", ASCENDING)]
        )
        return [opening_from(document) async for document in cursor]

    async def recent_openings(self, *, limit: int) -> list[Opening]:
        cursor = (
            self._openings.find({})
            .sort([("posted_at", DESCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [opening_from(document) async for document in cursor]

    async def expired_openings(self, *, now: datetime, limit: int) -> list[Opening]:
        cursor = (
            self._openings.find({"status": "open", "expires_at": {"$lte": now}})
            .sort("expires_at", ASCENDING)
            .limit(limit)
        )
        return [opening_from(document) async for document in cursor]

    async def refresh_listing(self, employer_id: str, *, session: Session) -> None:
        roles: set[str] = set()
        count = 0
        async for document in self._openings.find(
            {"employer_id": employer_id, "status": "open"}, {"role": 1}, session=session
        ):
            roles.add(document["role"])
            count += 1
        await self._employers.update_one(
            {"_id": employer_id},
            {"$set": {"open_openings": count, "open_roles": sorted(roles)}},
            session=session,
        )

    # --- searches ----------------------------------------------------------------------------

    async def search_employers(self, query: DirectoryQuery) -> Page[EmployerListing]:
        match: Document = {"status": "approved"}
        if query.setting:
            match["settings"] = query.setting
        if query.roles:
            match["open_roles"] = {"$in": list(query.roles)}
        if query.text:
            pattern = {"$regex": re.escape(query.text), "$options": "i"}
            match["$or"] = [
                {"organization_name": pattern},
                {"description": pattern},
                {"place.city": pattern},
            ]
        skip = offset_of(query.page, query.page_size)
        if query.near is None:
            cursor = (
                self._employers.find(match)
                .sort([("organization_name", ASCENDING), ("_id", ASCENDING)])
                .skip(skip)
                .limit(query.page_size)
            )
            documents = [document async for document in cursor]
            total = await self._employers.count_documents(match)
        else:
            stage = _geo_near(near=query.near, radius_miles=query.radius_miles, query=match)
            documents = await self._aggregate(
                self._employers, [stage, {"$skip": skip}, {"$limit": query.page_size}]
            )
            total = await self._count(self._employers, stage)
        items = [
            EmployerListing(
                employer=employer_from(document),
                distance_miles=document.get("distance_miles"),
                open_openings=document.get("open_openings", 0),
            )
            for document in documents
        ]
        return Page(items, total, query.page, query.page_size)

    async def search_openings(self, query: BoardQuery, *, now: datetime) -> Page[OpeningListing]:
        match: Document = {
            "status": "open",
            "employer_approved": True,
            "expires_at": {"$gt": now},
        }
        if query.roles:
            match["role"] = {"$in": list(query.roles)}
        if query.setting:
            match["setting"] = query.setting
        if query.text:
            pattern = {"$regex": re.escape(query.text), "$options": "i"}
            match["$or"] = [
                {"title": pattern},
                {"organization_name": pattern},
                {"description": pattern},
            ]
        skip = offset_of(query.page, query.page_size)
        newest: list[tuple[str, int]] = [("posted_at", DESCENDING), ("_id", ASCENDING)]
        if query.near is None:
            if not query.include_remote:
                match["remote"] = False
            cursor = self._openings.find(match).sort(newest).skip(skip).limit(query.page_size)
            items = [OpeningListing(opening_from(d), None) async for d in cursor]
            total = await self._openings.count_documents(match)
            return Page(items, total, query.page, query.page_size)

        stage = _geo_near(
            near=query.near, radius_miles=query.radius_miles, query=match | {"remote": False}
        )
        local_total = await self._count(self._openings, stage)
        documents: list[Document] = []
        if skip < local_total:
            documents = await self._aggregate(
                self._openings, [stage, {"$skip": skip}, {"$limit": query.page_size}]
            )
        listings = [OpeningListing(opening_from(d), d.get("distance_miles")) for d in documents]
        total = local_total
        if query.include_remote:
            remote = match | {"remote": True}
            total += await self._openings.count_documents(remote)
            room = query.page_size - len(listings)
            if room > 0:
                cursor = (
                    self._openings.find(remote)
                    .sort(newest)
                    .skip(max(0, skip - local_total))
                    .limit(room)
                )
                listings.extend([OpeningListing(opening_from(d), None) async for d in cursor])
        return Page(listings, total, query.page, query.page_size)

    @staticmethod
    async def _aggregate(collection: Any, pipeline: Sequence[Document]) -> list[Document]:
        cursor = await collection.aggregate(list(pipeline))
        return [document async for document in cursor]

    async def _count(self, collection: Any, stage: Document) -> int:
        rows = await self._aggregate(collection, [stage, {"$count": "total"}])
        return int(rows[0]["total"]) if rows else 0

    # --- idempotency keys --------------------------------------------------------------------

    async def idempotency_record(
        self, principal: str, key: str, *, session: Session
    ) -> IdempotencyRecord | None:
        document = await self._idempotency.find_one(
            {"_id": idempotency_id(principal, key)}, session=session
        )
        return idempotency_from(document) if document else None

    async def keep_idempotency_record(
        self, record: IdempotencyRecord, *, replaces: IdempotencyRecord | None, session: Session
    ) -> None:
        document = idempotency_document(record)
        if replaces is None:
            try:
                await self._idempotency.insert_one(document, session=session)
            except DuplicateKeyError as error:
                raise IdempotencyKeyTakenError(record.claim.key) from error
            return
        result = await self._idempotency.replace_one(
            {"_id": document["_id"], "expires_at": replaces.expires_at}, document, session=session
        )
        if result.matched_count != 1:
            raise IdempotencyKeyTakenError(record.claim.key)

    # --- API keys ----------------------------------------------------------------------------

    async def add_api_key(self, record: ApiKeyRecord, *, session: Session) -> None:
        await self._api_keys.insert_one(
            {
                "_id": record.key_id,
                "employer_id": record.employer_id,
                "name": record.name,
                "prefix": record.prefix,
                "secret_hash": record.secret_hash,
                "created_at": record.created_at,
                "revoked_at": None,
            },
            session=session,
        )

    async def api_keys_of(self, employer_id: str) -> list[ApiKeyRecord]:
        cursor = self._api_keys.find({"employer_id": employer_id}).sort("created_at", DESCENDING)
        return [api_key_from(document) async for document in cursor]

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        document = await self._api_keys.find_one({"_id": key_id})
        return api_key_from(document) if document else None

    async def revoke_api_key(self, employer_id: str, key_id: str, *, now: datetime) -> bool:
        result = await self._api_keys.update_one(
            {"_id": key_id, "employer_id": employer_id, "revoked_at": None},
            {"$set": {"revoked_at": now}},
        )
        return result.modified_count == 1

    # --- reach -------------------------------------------------------------------------------

    async def count_reach(self, counts: Mapping[str, int], *, session: Session) -> None:
        if not counts:
            return
        await self._openings.bulk_write(
            [
                UpdateOne({"_id": opening_id}, {"$inc": {"notified": count}})
                for opening_id, count in counts.items()
            ],
            ordered=False,
            session=session,
        )
