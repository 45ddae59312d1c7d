"""Devices: inventory, profile, and the actions on one device."""
from __future__ import annotations

import re
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from ips import control
from webui import queries, rules_catalog
from webui.deps import CsrfDep, SettingsDep, StoreDep, UserDep
from webui.models import DestinationRequest, DeviceUpdate, Done, QuarantineRequest, RelearnRequest

router = APIRouter(prefix="/devices", tags=["devices"])
Mac = Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$",
                          description="MAC address, aa:bb:cc:dd:ee:ff")]


def _mac(mac: str) -> str:
    return control.normalize_mac(mac)


def _expires(minutes: int | None) -> float | None:
    return time.time() + minutes * 60 if minutes else None


def device_patches(settings, device: dict, alert_sids: set[int]) -> list[dict]:
    catalog = rules_catalog.running_catalog(settings)
    result = []
    for rule in catalog.patches:
        fired = rule.sid in alert_sids
        if fired or rules_catalog.patch_applies(rule, device["type"], device["vendor"]):
            result.append({"sid": rule.sid, "msg": rule.msg, "cves": list(rule.cves),
                           "fired": fired, "file": rule.file})
    return result[:100]


_VARIANT = re.compile(r", [^,(]+(?= \([^()]*\)$)")


def _base_msg(msg: str) -> str:
    """A twin rule's message without its variant: "... injection, query
    (CVE-x)" and "... injection, form body (CVE-x)" -> "... injection (CVE-x)"."""
    return _VARIANT.sub("", msg)


def patch_groups(patches: list[dict]) -> list[dict]:
    """The device page's view of its patches: one row per CVE, however many
    rules patch it (a form-body, query and multipart twin read as one patch
    to the owner)."""
    groups: dict = {}
    for patch in patches:
        groups.setdefault(tuple(patch["cves"]), []).append(patch)   # a patch names a CVE
    return [{"cves": rules[0]["cves"],
             "msg": _base_msg(rules[0]["msg"]) if len(rules) > 1 else rules[0]["msg"],
             "sids": [rule["sid"] for rule in rules],
             "fired": any(rule["fired"] for rule in rules)} for rules in groups.values()]


def device_detail(store, settings, mac: str) -> dict:
    device = queries.get_device(store.conn, mac)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {mac}")
    device["timeline"] = queries.timeline(store.conn, device=mac, limit=50, include_muted=True)
    device["anomalies"] = [i for i in device["timeline"] if i["source"] == "anomaly"]
    sids = {r[0] for r in store.conn.execute(
        "SELECT DISTINCT sid FROM alerts WHERE device_mac=? AND sid IS NOT NULL LIMIT 1000", (mac,))}
    device["patches"] = device_patches(settings, device, sids)
    device["mutes"] = [m for m in queries.active_mutes(store.conn) if m["mac"] in (None, mac)]
    device["traffic"] = (device["profile"]["volume"][-48:] or
                         queries.traffic_by_hour(store.conn, mac=mac, hours=24))
    return device


@router.get("", summary="All devices with status, risk and last alert")
def list_devices(store: StoreDep, _: UserDep) -> list[dict]:
    return queries.list_devices(store.conn)


@router.get("/{mac}", summary="One device: profile, blocks, alerts, anomalies, virtual patches",
            responses={404: {"description": "no such device"}})
def get_device(mac: Mac, store: StoreDep, settings: SettingsDep, _: UserDep) -> dict:
    return device_detail(store, settings, _mac(mac))


@router.patch("/{mac}", summary="Rename or retype a device", response_model=Done,
              responses={400: {"description": "invalid"}, 404: {"description": "no such device"}})
def update_device(mac: Mac, body: DeviceUpdate, store: StoreDep, session: CsrfDep) -> Done:
    control.rename_device(store, _mac(mac), actor=session.user, name=body.name,
                          device_type=body.type)
    return Done()


@router.post("/{mac}/quarantine", summary="Quarantine: drop all traffic of the device",
             response_model=Done, responses={400: {"description": "invalid"},
                                             404: {"description": "no such device"}})
def quarantine(mac: Mac, body: QuarantineRequest, store: StoreDep, session: CsrfDep) -> Done:
    block_id = control.quarantine(store, _mac(mac), actor=session.user, reason=body.reason,
                                  expires=_expires(body.expires_minutes))
    return Done(detail={"block_id": block_id})


@router.delete("/{mac}/quarantine", summary="Lift the quarantine", response_model=Done,
               responses={400: {"description": "invalid"}, 404: {"description": "no such device"}})
def unquarantine(mac: Mac, store: StoreDep, session: CsrfDep) -> Done:
    rows = control.unquarantine(store, _mac(mac), actor=session.user)
    return Done(detail={"lifted": rows})


@router.post("/{mac}/block", summary="Block one destination for this device", response_model=Done,
             responses={400: {"description": "invalid"}, 404: {"description": "no such device"}})
def block(mac: Mac, body: DestinationRequest, store: StoreDep, session: CsrfDep) -> Done:
    block_id = control.block_destination(store, _mac(mac), body.destination, actor=session.user,
                                         reason=body.reason, expires=_expires(body.expires_minutes))
    return Done(detail={"block_id": block_id})


@router.post("/{mac}/unblock", summary="Lift the block of one destination", response_model=Done,
             responses={400: {"description": "invalid"}, 404: {"description": "no such device"}})
def unblock(mac: Mac, body: DestinationRequest, store: StoreDep, session: CsrfDep) -> Done:
    rows = control.unblock_destination(store, _mac(mac), body.destination, actor=session.user,
                                       reason=body.reason)
    return Done(detail={"lifted": rows})


@router.post("/{mac}/allow", summary="Accept a destination as normal for this device",
             response_model=Done, responses={400: {"description": "invalid"},
                                             404: {"description": "no such device"}})
def allow(mac: Mac, body: DestinationRequest, store: StoreDep, session: CsrfDep) -> Done:
    control.allow_destination(store, _mac(mac), body.destination, actor=session.user,
                              reason=body.reason)
    return Done()


@router.post("/{mac}/relearn", summary="Re-learn the device's normal behaviour",
             response_model=Done, responses={400: {"description": "invalid"},
                                             404: {"description": "no such device"}})
def relearn(mac: Mac, body: RelearnRequest, store: StoreDep, session: CsrfDep) -> Done:
    until = control.relearn(store, _mac(mac), actor=session.user, days=body.days,
                            reason=body.reason)
    return Done(detail={"until": until})
