from typing import Annotated

from fastapi import APIRouter, Query

from webui import queries
from webui.deps import SettingsDep, StoreDep, UserDep

router = APIRouter(tags=["overview"])


@router.get("/overview", summary="Protection state, device and alert counts, top risks, traffic")
def overview(store: StoreDep, settings: SettingsDep, _: UserDep) -> dict:
    return queries.overview(store.conn, stale_seconds=settings.counters_stale_seconds)


@router.get("/audit", summary="Recent audited changes, newest first")
def audit(store: StoreDep, _: UserDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
          target: Annotated[str | None, Query(max_length=64)] = None) -> list[dict]:
    return queries.audit_log(store.conn, limit=limit, target=target)
