import time

from fastapi import APIRouter, HTTPException, Request, status

from webui import queries
from webui.deps import PageUserDep, StoreDep
from webui.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


@router.get("/alerts")
def alerts_page(request: Request, store: StoreDep, session: PageUserDep,
                device: str = "", severity: str = "", kind: str = "", range: str = "",
                show: str = ""):
    since = time.time() - RANGES[range] if range in RANGES else None
    severity_value = int(severity) if severity in ("1", "2", "3", "4") else None
    kind_value = kind if kind in ("signature", "anomaly", *queries.ANOMALY_KINDS) else None
    items = queries.timeline(store.conn, device=device.lower() or None, severity=severity_value,
                             kind=kind_value, since=since,
                             include_acknowledged=show != "open",
                             include_muted=show == "all", limit=200)
    devices = sorted(queries.device_names(store.conn).items(), key=lambda kv: kv[1].lower())
    filters = {"device": device.lower(), "severity": severity, "kind": kind, "range": range,
               "show": show}
    live = not any(filters.values())
    return render(request, "alerts.html", session, items=items, devices=devices,
                  filters=filters, kinds=queries.ANOMALY_KINDS, ranges=list(RANGES), live=live,
                  mutes=queries.active_mutes(store.conn))


@router.get("/alerts/{alert_id}")
def alert_page(alert_id: int, request: Request, store: StoreDep, session: PageUserDep):
    item = queries.get_alert(store.conn, alert_id) if 0 < alert_id < 2**63 else None
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    return render(request, "alert.html", session, item=item, active="alerts")


@router.get("/anomalies/{anomaly_id}")
def anomaly_page(anomaly_id: int, request: Request, store: StoreDep, session: PageUserDep):
    item = queries.get_anomaly(store.conn, anomaly_id) if 0 < anomaly_id < 2**63 else None
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such anomaly")
    return render(request, "alert.html", session, item=item, active="alerts")
