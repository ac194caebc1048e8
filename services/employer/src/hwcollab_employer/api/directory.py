"""What anyone may read over the JSON API: the taxonomy, approved employers and Find a Local
Employer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from hwcollab_common.openapi import error_responses
from hwcollab_employer.api.dependencies import (
    PageQuery,
    PageSizeQuery,
    RadiusQuery,
    RoleQuery,
    SettingQuery,
    ZipQuery,
    api_router,
)
from hwcollab_employer.context import Context
from hwcollab_employer.domain import NotFoundError
from hwcollab_employer.listing import SearchParameters, directory_query
from hwcollab_employer.resources import DirectoryPage, EmployerPublic, RoleSuggestion
from hwcollab_schemas import taxonomy

router = api_router()


@router.get("/taxonomy", tags=["taxonomy"], summary="Roles, families, settings, credentials, …")
async def get_taxonomy() -> dict[str, Any]:
    return taxonomy.taxonomy_document()


@router.get("/taxonomy/suggest", tags=["taxonomy"], summary="The canonical role for a job title")
async def suggest(
    title: Annotated[str, Query(max_length=200, examples=["RN Care Manager - Health Home"])],
) -> RoleSuggestion:
    code = taxonomy.suggest_role(title)
    return RoleSuggestion(role=code, title=taxonomy.ROLES[code].title if code else None)


@router.get(
    "/employers/{employer_id}",
    tags=["directory"],
    summary="An approved employer",
    responses=error_responses(404, s404="No approved employer with this id."),
)
async def public_employer(
    context: Context, employer_id: Annotated[str, Path(max_length=64)]
) -> EmployerPublic:
    employer = await context.service.employer(employer_id)
    if not employer.approved:
        raise NotFoundError(employer_id)
    return EmployerPublic.of(employer)


@router.get("/directory", tags=["directory"], summary="Find a Local Employer: nearest first")
async def directory(
    context: Context,
    zip: ZipQuery = None,
    radius_miles: RadiusQuery = None,
    setting: SettingQuery = None,
    role: RoleQuery = None,
    q: Annotated[str | None, Query(max_length=200, description="Words in the name or text")] = None,
    page: PageQuery = None,
    page_size: PageSizeQuery = None,
) -> DirectoryPage:
    query = directory_query(
        SearchParameters(
            zip=zip,
            radius_miles=radius_miles,
            setting=setting,
            role=role,
            text=q,
            page=page,
            page_size=page_size,
        )
    )
    return DirectoryPage.of(await context.service.find_employers(query))
