"""A signature alert told to the device's owner.

A rule's own words ("ET EXPLOIT ... RCE Attempt", a classtype) are for
analysts. The owner of an unpatched camera needs four things: what happened
to which device, what the box did about it, why it matters (a known flaw
the vendor has not fixed, held off by a virtual patch), and what to do.
Everything here comes from what the store holds for the alert: which side
the device was on (it sent the packet or was sent it), the action, the
rule's metadata (`attack`, `cve`, `affected_product`), its category and its
message. Nothing is invented: a rule with no `attack` metadata is described
by its message and category.
"""
from __future__ import annotations

import re
from typing import Any

VPATCH_SIDS = range(9_100_000, 9_101_000)
"""signatures/virtual-patches.rules and the vendor feed's patches."""

_CVE = re.compile(r"CVE[-_](\d{4})[-_](\d{4,7})", re.I)

# metadata `attack` -> what the device was sent (it is the target)
SENT_TO_DEVICE = {
    "mirai_bruteforce": "a telnet login with a factory-default password, one of those "
                        "Mirai-family botnets try on every device they find",
    "command_injection": "a request built to make it run commands of the attacker's choosing "
                         "(command injection)",
    "rce": "an exploit for a flaw that lets an attacker run programs on it "
           "(remote code execution)",
    "auth_bypass": "a request that gets past its login without the password "
                   "(authentication bypass)",
    "mirai_loader": "a program (a Linux executable) of the kind botnets install once they "
                    "are in",
    "request_smuggling": "a request framed so that its own web server could read another "
                         "request than the one inspected (request smuggling), a way to sneak "
                         "an exploit past the box",
    "protocol_switch": "a switch to cleartext HTTP/2, which the box cannot read, so an exploit "
                       "could pass uninspected",
    "uninspectable_body": "a web response in a compression the box cannot read (brotli or zstd), "
                          "so what it carried could not be checked",
    "memory_disclosure": "a request that makes it send back pieces of its memory, where keys "
                         "and passwords live (Heartbleed)",
}
# metadata `attack` -> what the device did (it is the sender)
DONE_BY_DEVICE = {
    "mirai_scan": "tried to open telnet connections to many addresses within seconds, the way "
                  "an infected device looks for its next victims",
    "mirai_loader": "asked for a file whose name a botnet's loader uses",
}


def explain_alert(item: dict[str, Any]) -> dict[str, Any]:
    """{"summary": one sentence, "points": sentences, "advice": sentences}
    for `webui.queries.get_alert`'s item."""
    device = item.get("device_name") or item.get("device_mac") or "a device on your network"
    by_device = bool(item.get("device_mac")) and item.get("src_mac") == item.get("device_mac")
    peer = item.get("dest_ip") if by_device else item.get("src_ip")
    attack = _attack(item.get("metadata") or {}, by_device)
    blocked = item.get("action") == "blocked"
    cves = _cves(item)
    patch = item.get("sid") in VPATCH_SIDS
    points: list[str] = []
    advice: list[str] = []

    title = f'traffic matching "{item.get("title")}"'
    if by_device:
        summary = f"{device} {attack}" if attack else f"{device} sent {title}"
        summary += f" (to {peer})." if peer else "."
    else:
        summary = f"{device} was sent {attack or title}" + (f" from {peer}." if peer else ".")
    if item.get("category") and not attack:
        points.append(f"Rule category: {item['category']}.")

    if blocked:
        connection = " and everything after it on that connection" if item.get("proto") == "TCP" else ""
        if by_device:
            points.append(f"ReefGuard blocked it: the packet was dropped{connection} before it "
                          "left your network.")
        else:
            points.append(f"ReefGuard blocked it: the packet was dropped{connection}, so it "
                          f"never reached {device}.")
    else:
        points.append("ReefGuard let it through: this rule only raises an alert, it does not "
                      "block.")

    if cves:
        product = _product(item.get("metadata") or {})
        flaw = f"{', '.join(cves)}, a known flaw" + (f" in {product}" if product else "")
        if patch:
            points.append(f"It exploits {flaw}. Until the vendor ships a fix, this rule is "
                          f"what protects {device}: a virtual patch.")
        else:
            points.append(f"It targets {flaw}.")
            advice.append(f"Check whether {device}'s vendor has a firmware update for "
                          f"{cves[0]}.")

    metadata_attack = (item.get("metadata") or {}).get("attack") or []
    if by_device:
        advice.append(f"A device does this when it is infected or misused. Quarantine {device} "
                      "from its page (the box then drops its traffic), reset it to factory "
                      "settings, set a new password and update its firmware "
                      "before you let it back.")
    elif "mirai_loader" in metadata_attack:
        advice.append(f"A device fetches such a file when an attacker already made it run a "
                      f"command. Look at {device}'s other alerts, and consider quarantining it "
                      "until it has been reset to factory settings and updated.")
    elif "mirai_bruteforce" in metadata_attack:
        advice.append(f"If {device} still has its factory password, change it. Make sure your "
                      "router does not forward telnet (ports 23, 2323) to it.")
    elif not blocked:
        advice.append("If this should never happen on your network, ask for the rule to be set "
                      "to drop, or mute it for this device if it is expected.")
    elif not advice:
        advice.append("Nothing to do now. Keep the device's firmware up to date, and do not "
                      "forward its ports to the internet on your router (port forwarding, "
                      "UPnP).")
    return {"summary": summary, "points": points, "advice": advice}


def _attack(metadata: dict, by_device: bool) -> str | None:
    table = DONE_BY_DEVICE if by_device else SENT_TO_DEVICE
    for value in metadata.get("attack") or ():
        if value in table:
            return table[value]
    return None


def _cves(item: dict) -> list[str]:
    found: list[str] = []
    texts = [str(v) for v in (item.get("metadata") or {}).get("cve") or ()] + [item.get("title") or ""]
    for text in texts:
        for year, number in _CVE.findall(text):
            name = f"CVE-{year}-{number}"
            if name not in found:
                found.append(name)
    return found


def _product(metadata: dict) -> str | None:
    products = [str(p).replace("_", " ") for p in metadata.get("affected_product") or ()
                if str(p).lower() != "any"]
    return ", ".join(products) or None
