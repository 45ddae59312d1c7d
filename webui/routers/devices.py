from fastapi import APIRouter, HTTPException, Request, status

from ips import control
from webui import queries
from webui.deps import PageUserDep, SettingsDep, StoreDep
from webui.routers.api.devices import device_detail, patch_groups
from webui.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/devices")
def devices_page(request: Request, store: StoreDep, session: PageUserDep):
    return render(request, "devices.html", session, devices=queries.list_devices(store.conn))


@router.get("/devices/{mac}")
def device_page(mac: str, request: Request, store: StoreDep, settings: SettingsDep,
                session: PageUserDep):
    try:
        mac = control.normalize_mac(mac)
    except control.ControlError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such device") from None
    device = device_detail(store, settings, mac)
    audit = queries.audit_log(store.conn, target=mac, limit=10)
    return render(request, "device.html", session, device=device, audit=audit,
                  patches=patch_groups(device["patches"]), anomaly_kinds=queries.ANOMALY_KINDS)
