"""The JSON API under /api: every action a page offers is one of these calls."""
from fastapi import APIRouter

from webui.routers.api import alerts, auth, devices, overview, rules, settings

router = APIRouter(prefix="/api")
for module in (auth, overview, devices, alerts, rules, settings):
    router.include_router(module.router)
