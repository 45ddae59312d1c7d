"""Alerts and device anomalies: timeline, detail, acknowledge, mute, live feed."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Annotated, AsyncIterator, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from ips import control
from ips.store import connect
from webui import queries
from webui.deps import CsrfDep, SettingsDep, StoreDep, UserDep
from webui.models import Done, MuteRequest

router = APIRouter(tags=["alerts"])
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Kind = Literal["signature", "anomaly", *queries.ANOMALY_KINDS]


class FeedConnection:
    """The live feed's own store connection, used from worker threads one
    query at a time. A client that goes away cancels the feed while its
    last query may still run in a thread; closing the connection under that
    query is a use-after-free in SQLite (the test suite saw the process
    segfault in `active_mutes`). So queries and `close` take one lock, and
    the feed closes from a thread of its own: the close waits for the
    query, the event loop does not."""

    def __init__(self, path) -> None:
        self.conn = connect(path)
        self._lock = threading.Lock()

    def run(self, function, *args):
        with self._lock:
            return function(self.conn, *args)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def close_soon(self) -> None:
        threading.Thread(target=self.close, name="feed-close", daemon=True).start()


@router.get("/alerts", summary="Alerts and device anomalies, newest first, filtered")
def list_alerts(store: StoreDep, _: UserDep,
                device: Annotated[str | None, Query(max_length=17)] = None,
                severity: Annotated[int | None, Query(ge=1, le=4)] = None,
                kind: Kind | None = None,
                since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
                until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
                include_acknowledged: bool = True, include_muted: bool = False,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict]:
    return queries.timeline(store.conn, device=device.lower() if device else None,
                            severity=severity, kind=kind, since=since, until=until,
                            include_acknowledged=include_acknowledged,
                            include_muted=include_muted, limit=limit)


@router.get("/alerts/stream", include_in_schema=False)
async def stream(request: Request, settings: SettingsDep, _: UserDep) -> StreamingResponse:
    """Server-sent events: one `alert` event per new alert or anomaly. The
    connection ends after `sse_max_seconds`; EventSource reconnects and
    resumes from Last-Event-ID ("<alert id>:<anomaly id>")."""
    last = request.headers.get("last-event-id", "")

    async def events() -> AsyncIterator[str]:
        feed = await asyncio.to_thread(FeedConnection, settings.store_path)
        try:
            try:
                after_alert, after_anomaly = (int(x) for x in last.split(":", 1))
            except ValueError:
                after_alert, after_anomaly = await asyncio.to_thread(feed.run, queries.max_ids)
            yield f"retry: 3000\nevent: hello\ndata: {{}}\nid: {after_alert}:{after_anomaly}\n\n"
            deadline = time.monotonic() + settings.sse_max_seconds
            while time.monotonic() < deadline:
                if await request.is_disconnected():
                    return
                items = await asyncio.to_thread(feed.run, queries.alerts_since, after_alert,
                                                after_anomaly)
                for item in items:
                    if item["source"] == "signature":
                        after_alert = max(after_alert, item["id"])
                    else:
                        after_anomaly = max(after_anomaly, item["id"])
                    yield (f"event: alert\nid: {after_alert}:{after_anomaly}\n"
                           f"data: {json.dumps(item)}\n\n")
                await asyncio.sleep(settings.sse_poll_seconds)
        finally:
            feed.close_soon()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/alerts/{alert_id}", summary="One signature alert with its flow summary",
            responses={404: {"description": "no such alert"}})
def get_alert(alert_id: RowId, store: StoreDep, _: UserDep) -> dict:
    item = queries.get_alert(store.conn, alert_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return item


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge a signature alert",
             response_model=Done, responses={404: {"description": "no such alert"}})
def acknowledge_alert(alert_id: RowId, store: StoreDep, session: CsrfDep) -> Done:
    control.acknowledge_alert(store, alert_id, actor=session.user)
    return Done()


@router.get("/anomalies/{anomaly_id}", summary="One device anomaly with its explanation",
            responses={404: {"description": "no such anomaly"}})
def get_anomaly(anomaly_id: RowId, store: StoreDep, _: UserDep) -> dict:
    item = queries.get_anomaly(store.conn, anomaly_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no anomaly {anomaly_id}")
    return item


@router.post("/anomalies/{anomaly_id}/acknowledge", summary="Acknowledge a device anomaly",
             response_model=Done, responses={404: {"description": "no such anomaly"}})
def acknowledge_anomaly(anomaly_id: RowId, store: StoreDep, session: CsrfDep) -> Done:
    control.acknowledge_anomaly(store, anomaly_id, actor=session.user)
    return Done()


@router.get("/mutes", summary="Active mutes")
def list_mutes(store: StoreDep, _: UserDep) -> list[dict]:
    return queries.active_mutes(store.conn)


@router.post("/mutes", summary="Mute a rule (sid) or anomaly kind, for a device or all, until expiry",
             response_model=Done, responses={400: {"description": "invalid"},
                                             404: {"description": "no such device"}})
def add_mute(body: MuteRequest, store: StoreDep, session: CsrfDep) -> Done:
    mute_id = control.mute(store, actor=session.user, sid=body.sid, kind=body.kind,
                           mac=body.mac, expires=time.time() + body.expires_minutes * 60,
                           reason=body.reason)
    return Done(detail={"mute_id": mute_id})


@router.delete("/mutes/{mute_id}", summary="End a mute now", response_model=Done,
               responses={404: {"description": "no such active mute"}})
def remove_mute(mute_id: RowId, store: StoreDep, session: CsrfDep) -> Done:
    control.unmute(store, mute_id, actor=session.user)
    return Done()
