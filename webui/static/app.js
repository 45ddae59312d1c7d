// ReefGuard dashboard script: no dependencies, loaded from 'self' only (the CSP
// forbids inline script). Two jobs:
//  1. Forms marked data-api="/api/..." are sent as JSON with the session's
//     CSRF token in X-CSRF-Token, so every page action goes through the API.
//  2. The alert timeline (data-live) receives new alerts by server-sent events.
"use strict";
(function () {
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function flash(message, isError) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = message;
    box.classList.toggle("flash-error", !!isError);
    box.classList.remove("hidden");
    window.clearTimeout(flash.timer);
    flash.timer = window.setTimeout(function () { box.classList.add("hidden"); }, 5000);
  }

  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.disabled) { return; }
      var type = field.getAttribute("data-type");
      var value;
      if (field.type === "checkbox") {
        value = field.checked;
      } else {
        value = field.value;
        if (value === "" && !field.hasAttribute("data-keep-empty")) { return; }
        if (type === "number") { value = Number(value); }
        if (type === "bool") { value = value === "true"; }
      }
      body[field.name] = value;
    });
    return body;
  }

  function describeError(status, payload) {
    if (payload && typeof payload.detail === "string") { return payload.detail; }
    if (payload && Array.isArray(payload.detail)) {
      return payload.detail.map(function (d) { return (d.loc || []).slice(-1)[0] + ": " + d.msg; }).join("; ");
    }
    if (status === 401) { return "Your session ended; please log in again."; }
    return "Request failed (" + status + ")";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var url = form.getAttribute("data-api");
    if (!url) { return; }
    event.preventDefault();
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { return; }
    var method = (form.getAttribute("data-method") || "POST").toUpperCase();
    var buttons = form.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    var init = { method: method, credentials: "same-origin",
                 headers: { "X-CSRF-Token": csrfToken, "Accept": "application/json" } };
    if (method !== "DELETE" || form.elements.length > 1) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(formBody(form));
    }
    fetch(url, init).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (payload) {
        if (!response.ok) { throw new Error(describeError(response.status, payload)); }
        var next = form.getAttribute("data-next");
        if (next) { window.location.assign(next); } else { window.location.reload(); }
      });
    }).catch(function (error) {
      flash(error.message, true);
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
    });
  });

  // --- live alerts ---------------------------------------------------------
  var severityNames = { 1: "high", 2: "medium", 3: "low", 4: "info" };

  function cell(row, child) {
    var td = document.createElement("td");
    if (typeof child === "string") { td.textContent = child; } else if (child) { td.appendChild(child); }
    row.appendChild(td);
    return td;
  }

  function span(cls, text) {
    var s = document.createElement("span");
    s.className = cls; s.textContent = text; return s;
  }

  function link(href, text) {
    var a = document.createElement("a");
    a.href = href; a.textContent = text; return a;
  }

  function timeText(ts) {
    var d = new Date(ts * 1000);
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function addRow(body, item) {
    var row = document.createElement("tr");
    row.className = "fresh";
    cell(row, timeText(item.ts));
    var sev = severityNames[item.severity] || "info";
    cell(row, span("sev sev-" + sev, sev));
    cell(row, span("kind", item.kind));
    cell(row, item.device_mac ? link("/devices/" + encodeURIComponent(item.device_mac),
      item.device_name || item.device_mac) : span("muted", "unknown"));
    var what = cell(row, link((item.source === "signature" ? "/alerts/" : "/anomalies/") + item.id, item.title));
    if (item.source === "signature" && (item.action === "blocked" || item.action === "allowed")) {
      what.appendChild(document.createTextNode(" "));
      what.appendChild(span("tag tag-" + item.action, item.action));
    }
    var empty = body.querySelector("td[colspan]");
    if (empty) { empty.parentNode.remove(); }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 300) { body.deleteRow(body.rows.length - 1); }
    window.setTimeout(function () { row.classList.remove("fresh"); }, 4000);
  }

  var timeline = document.getElementById("timeline-body");
  var badge = document.getElementById("new-alerts");
  var streamUrl = timeline ? timeline.getAttribute("data-live") : "/api/alerts/stream";
  if (streamUrl && window.EventSource && csrfToken) {
    var status = document.getElementById("live-status");
    var unseen = 0;
    var source = new EventSource(streamUrl);
    source.addEventListener("alert", function (event) {
      var item;
      try { item = JSON.parse(event.data); } catch (e) { return; }
      if (timeline && timeline.getAttribute("data-live")) {
        addRow(timeline, item);
      } else if (badge) {
        unseen += 1;
        badge.textContent = String(unseen);
        badge.classList.remove("hidden");
      }
    });
    source.addEventListener("open", function () { if (status) { status.classList.remove("off"); status.textContent = "live"; } });
    source.addEventListener("error", function () { if (status) { status.classList.add("off"); status.textContent = "reconnecting"; } });
  }
})();
