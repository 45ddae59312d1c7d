"""The Jinja2 environment: autoescaping on, filters for times and sizes."""
from __future__ import annotations

import time
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from webui import charts

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))

SEVERITY_NAMES = {1: "high", 2: "medium", 3: "low", 4: "info"}


def _datetime(value: float | None) -> str:
    if not value:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _ago(value: float | None) -> str:
    if not value:
        return "never"
    seconds = max(0, int(time.time() - value))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


templates.env.filters["datetime"] = _datetime
templates.env.filters["ago"] = _ago
templates.env.filters["bytes"] = charts.human_bytes
templates.env.filters["thousands"] = lambda n: f"{int(n or 0):,}".replace(",", "\u202f")
templates.env.filters["severity_name"] = lambda s: SEVERITY_NAMES.get(s, "info")
templates.env.globals["volume_chart"] = charts.volume_chart
templates.env.globals["heat_map"] = charts.heat_map


def render(request: Request, name: str, session, **context):
    """Render a page for a logged-in user (CSRF token in a meta tag for app.js)."""
    context.setdefault("active", name.split(".")[0])
    return templates.TemplateResponse(
        request, name, {"user": session.user, "csrf_token": session.csrf, **context})
