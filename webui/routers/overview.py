from fastapi import APIRouter, Request

from webui import queries
from webui.deps import PageUserDep, SettingsDep, StoreDep
from webui.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
def overview_page(request: Request, store: StoreDep, settings: SettingsDep, session: PageUserDep):
    data = queries.overview(store.conn, stale_seconds=settings.counters_stale_seconds)
    return render(request, "overview.html", session, overview=data)
