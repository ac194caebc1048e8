"""The JSON API of the employer service (SPEC section 6), one module per resource: accounts,
credentials, openings, the directory and the operators' routes. Thin: parse, call the service,
answer; what the routes share is in :mod:`~hwcollab_employer.api.dependencies`."""

from __future__ import annotations

from fastapi import APIRouter

from hwcollab_employer.api import accounts, credentials, directory, openings, operators

router = APIRouter()
# Accounts first: ``/api/employers/me`` before the directory's ``/api/employers/{employer_id}``.
for resource in (accounts, credentials, openings, directory, operators):
    router.include_router(resource.router)
