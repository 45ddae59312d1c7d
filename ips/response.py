"""Automatic response: quarantine a device on high-confidence compromise.

Off by default (setting `devices.auto_quarantine`); when on, a collector
consumer watches each device's recent `device_anomaly` events and, when
`ips.profile.is_high_confidence_compromise` says the device itself attacks
or calls a known-bad host, quarantines it through the control plane, so
the action is audited exactly like one taken from the dashboard (actor
`reefguard-auto`) and lifted the same way.
"""
from __future__ import annotations

import logging
import time

from ips import control, events
from ips.profile import is_high_confidence_compromise

log = logging.getLogger("reefguard.response")

WINDOW_SECONDS = 3600.0
SETTING_REFRESH_SECONDS = 10.0
ACTOR = "reefguard-auto"


class AutoQuarantine:
    """Collector consumer (hook `device_anomaly`)."""

    def __init__(self, store) -> None:
        self.store = store
        self.recent: dict[str, list[events.DeviceAnomaly]] = {}
        self.quarantined: set[str] = set()
        self._enabled = False
        self._checked = 0.0

    def enabled(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= SETTING_REFRESH_SECONDS:
            self._enabled = bool(self.store.get_setting("devices.auto_quarantine", False))
            self._checked = now
        return self._enabled

    def device_anomaly(self, anomaly: events.DeviceAnomaly) -> None:
        mac = anomaly.mac
        if not mac or mac.startswith("ip:") or mac in self.quarantined:
            return
        window = [a for a in self.recent.get(mac, ())
                  if anomaly.timestamp - a.timestamp <= WINDOW_SECONDS]
        window.append(anomaly)
        self.recent[mac] = window[-32:]
        if not self.enabled() or not is_high_confidence_compromise(window):
            return
        reason = f"automatic quarantine: {anomaly.explanation}"
        try:
            control.quarantine(self.store, mac, actor=ACTOR, reason=reason[:500])
        except control.NotFound:
            # The inventory has not written the device yet; the next anomaly
            # of this device tries again.
            return
        self.quarantined.add(mac)
        log.warning("quarantined %s: %s", mac, anomaly.explanation)
