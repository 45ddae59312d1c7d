from fastapi import APIRouter, Request

from webui.deps import PageUserDep, SettingsDep, StoreDep
from webui.routers.api.rules import patch_list, rules_summary
from webui.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/rules")
def rules_page(request: Request, store: StoreDep, settings: SettingsDep, session: PageUserDep):
    return render(request, "rules.html", session, summary=rules_summary(store, settings),
                  patches=patch_list(store, settings)[:500])
