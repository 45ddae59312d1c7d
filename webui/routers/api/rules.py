"""Rules: ruleset version and counts, virtual patches, enable/disable, and
what the running engine refused (`ips.service.RULES_REPORT_FILE`, written
by the inline service next to the store)."""
from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, status

from ips import control
from ips.service import RULES_REPORT_FILE
from webui import queries, rules_catalog
from webui.deps import CsrfDep, SettingsDep, StoreDep, UserDep
from webui.models import Done, RuleToggle

router = APIRouter(prefix="/rules", tags=["rules"])


def rules_summary(store, settings) -> dict:
    catalog = rules_catalog.running_catalog(settings)
    state = queries.rule_settings(store.conn)
    disabled_sids = set(state["disabled_sids"])
    disabled_categories = set(state["disabled_categories"])

    def active(rule: rules_catalog.RuleInfo) -> bool:
        return (rule.enabled_in_file and rule.sid not in disabled_sids
                and (rule.classtype or "unclassified") not in disabled_categories)

    feed = state["feed"] or {}
    categories = [{"name": name, "rules": count, "enabled": name not in disabled_categories}
                  for name, count in catalog.categories().items()]
    return {
        "version": feed.get("version") or "local",
        "files": catalog.files,
        "total": len(catalog.rules),
        "active": sum(1 for rule in catalog.rules if active(rule)),
        "commented_out": sum(1 for rule in catalog.rules if not rule.enabled_in_file),
        "unreadable_lines": catalog.unreadable_lines,
        "patches": len(catalog.patches),
        "categories": categories,
        "disabled_sids": sorted(disabled_sids),
        "disabled_categories": sorted(disabled_categories),
        "feed": state["feed"],
        "engine": engine_report(settings),
    }


def engine_report(settings) -> dict | None:
    """What the running engine loaded and refused, with file and line (None:
    no inline service has written it yet, as offline)."""
    try:
        report = json.loads((settings.store_path.parent / RULES_REPORT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def patch_list(store, settings) -> list[dict]:
    catalog = rules_catalog.running_catalog(settings)
    disabled = set(queries.rule_settings(store.conn)["disabled_sids"])
    return [{"sid": r.sid, "rev": r.rev, "msg": r.msg, "cves": list(r.cves),
             "classtype": r.classtype, "file": r.file,
             "enabled": r.enabled_in_file and r.sid not in disabled,
             "products": list(r.metadata.get("affected_product", ())
                              + r.metadata.get("device_type", ()))}
            for r in catalog.patches]


@router.get("", summary="Ruleset version, counts per category, feed status")
def summary(store: StoreDep, settings: SettingsDep, _: UserDep) -> dict:
    return rules_summary(store, settings)


@router.get("/patches", summary="Virtual patches: rules that name a CVE")
def patches(store: StoreDep, settings: SettingsDep, _: UserDep) -> list[dict]:
    return patch_list(store, settings)


@router.post("/toggle", summary="Enable or disable rules by sid, category or CVE",
             response_model=Done, responses={400: {"description": "invalid"},
                                             404: {"description": "no rule names that CVE"}})
def toggle(body: RuleToggle, store: StoreDep, settings: SettingsDep, session: CsrfDep) -> Done:
    if body.category is not None:
        value = control.set_category_enabled(store, body.category, body.enabled, actor=session.user)
        return Done(detail={"disabled_categories": value})
    if body.cve is not None:
        cve = rules_catalog.normalize_cve(body.cve)
        sids = rules_catalog.running_catalog(settings).sids_for_cve(cve)
        if not sids:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rule names {cve}")
        control.set_sids_enabled(store, sids, body.enabled, actor=session.user, reason=cve)
        return Done(detail={"sids": sids})
    control.set_sids_enabled(store, [body.sid], body.enabled, actor=session.user)
    return Done(detail={"sids": [body.sid]})
