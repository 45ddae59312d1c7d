from fastapi import APIRouter, Request

from webui import queries
from webui.deps import PageUserDep, StoreDep
from webui.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/settings")
def settings_page(request: Request, store: StoreDep, session: PageUserDep):
    return render(request, "settings.html", session, settings=queries.box_settings(store.conn),
                  users=queries.users(store.conn), audit=queries.audit_log(store.conn, limit=30))
