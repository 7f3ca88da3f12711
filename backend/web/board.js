/* The alarm board: loads alarms, follows the live stream, lets staff acknowledge and keep alarms. */
"use strict";

(function () {
  const { t, has, apply, formatTime, setUpToggle, onChange } = window.OpenShelfI18n;
  const { api, element } = window.OpenShelfDom;
  const ops = window.OpenShelfOps;
  const PAGE = 50;
  const OUTCOMES = ["returned_to_desk", "checked_out", "false_alarm", "patron_left"];
  const CLIP_FORMATS = { "video/x-msvideo": "AVI", "video/avi": "AVI", "video/msvideo": "AVI", "video/mp4": "MP4" };
  const alarms = new Map();
  const kept = new Map(); // alarm id → {kept_by, kept_at, note} while kept for an incident
  const list = document.getElementById("alarm-list");
  const template = document.getElementById("alarm-template");
  const connection = document.getElementById("connection-status");
  let me = null;
  let stream = null;
  let retryMs = 1000;
  let connectionKey = "conn.connecting";
  let loaded = 0;

  function setConnection(state, key) {
    connection.dataset.state = state;
    connectionKey = key;
    document.getElementById("connection-label").textContent = t(key);
  }

  function seesAlarms() {
    return me && (me.role === "security" || me.role === "admin");
  }

  // ------------------------------------------------------------------ rendering

  function itemLine(item) {
    const line = element("li", { "data-testid": "alarm-item" });
    line.append(element("strong", { class: "title" }, item.title || t("alarm.unknownItem")));
    line.append(" ", element("span", { class: "item-id", "data-testid": "alarm-item-id" },
      item.item_id ? "(" + item.item_id + ")" : "(" + item.uid + ")"));
    const reasonKey = "reason." + item.reason;
    line.append(" — ", element("span", { class: "reason", "data-testid": "alarm-reason",
      "data-reason": item.reason }, has(reasonKey) ? t(reasonKey) : item.reason));
    return line;
  }

  function media(alarm) {
    if (!alarm.snapshot_url) {
      return element("div", { class: "no-snapshot", "data-testid": "alarm-no-snapshot" }, t("alarm.noSnapshot"));
    }
    const button = element("button", { type: "button", class: "snapshot-button",
      "aria-label": t("alarm.openSnapshot") });
    const image = element("img", { src: alarm.snapshot_url, "data-testid": "alarm-snapshot", loading: "lazy",
      alt: t("alarm.snapshotAlt", { gate: alarm.gate_id, time: formatTime(alarm.created_at) }) });
    button.append(image);
    button.addEventListener("click", () => openSnapshot(alarm.snapshot_url, image.alt));
    return button;
  }

  function evidence(alarm, problems, downloads) {
    for (const entry of alarm.evidence || []) {
      if (entry.url && entry.kind === "clip") {
        const format = CLIP_FORMATS[entry.content_type] || "video";
        const name = alarm.id + "-" + entry.camera_id + (format === "MP4" ? ".mp4" : ".avi");
        // Served by the audited evidence route: every download is logged.
        downloads.append(element("a", { href: entry.url, download: name, class: "clip-link",
          "data-testid": "alarm-clip-link" }, t("alarm.downloadClip", { format })), " ");
      } else if (entry.problem) {
        const key = entry.kind === "clip" ? "alarm.noClip" : "alarm.noSnapshotReason";
        problems.append(element("p", { "data-testid": entry.kind === "clip" ? "alarm-no-clip" : "alarm-snapshot-problem",
          "data-camera-id": entry.camera_id }, t(key, { problem: entry.problem })));
      }
    }
    problems.hidden = problems.childElementCount === 0;
  }

  function ackControls(alarm, box) {
    box.setAttribute("aria-label", t("ack.group"));
    if (alarm.status === "acknowledged") {
      const outcome = alarm.outcome ? t("outcome." + alarm.outcome) : "";
      box.append(element("p", { class: "ack-done", "data-testid": "alarm-ack-info" },
        t("ack.done", { user: alarm.acknowledged_by, time: formatTime(alarm.acknowledged_at), outcome })));
      if (alarm.note) box.append(element("p", { class: "ack-note" }, alarm.note));
      return;
    }
    const noteId = "note-" + alarm.id;
    box.append(element("label", { for: noteId }, t("ack.note")));
    const note = element("input", { id: noteId, type: "text", maxlength: "2000", "data-testid": "ack-note" });
    box.append(note);
    const buttons = element("div", { class: "ack-buttons" });
    if (alarm.status === "open") {
      const silence = element("button", { type: "button", class: "secondary", "data-testid": "ack-silence" },
        t("ack.silence"));
      silence.addEventListener("click", () => act(alarm.id, "silence", null, box));
      buttons.append(silence);
    }
    for (const outcome of OUTCOMES) {
      const button = element("button", { type: "button", "data-testid": "ack-" + outcome, "data-outcome": outcome },
        t("outcome." + outcome));
      button.addEventListener("click", () => act(alarm.id, "acknowledge", { outcome, note: note.value || null }, box));
      buttons.append(button);
    }
    box.append(buttons);
  }

  function keepControls(alarm, box) {
    box.setAttribute("aria-label", t("keep.keep"));
    const mark = kept.get(alarm.id);
    const toggle = element("button", { type: "button", class: "secondary", "data-testid": "keep-toggle",
      "aria-pressed": String(Boolean(mark)) }, t(mark ? "keep.release" : "keep.keep"));
    if (mark) {
      box.append(element("p", { class: "kept-info", "data-testid": "alarm-kept-info" },
        t("keep.kept", { user: mark.kept_by, time: formatTime(mark.kept_at) }) + (mark.note ? ": " + mark.note : "")));
      toggle.addEventListener("click", () => keep(alarm.id, { kept: false }, box));
      box.append(toggle);
      return;
    }
    const noteId = "keep-note-" + alarm.id;
    const note = element("input", { id: noteId, type: "text", maxlength: "2000", "data-testid": "keep-note",
      placeholder: t("keep.note") });
    toggle.addEventListener("click", () => keep(alarm.id, { kept: true, note: note.value || null }, box));
    // The placeholder shows the label; the real label stays for screen readers.
    box.append(element("label", { for: noteId, class: "visually-hidden" }, t("keep.note")), note, toggle);
  }

  function render(alarm) {
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.alarmId = alarm.id;
    row.dataset.status = alarm.status;
    row.dataset.kept = String(kept.has(alarm.id));
    row.id = "alarm-" + alarm.id;
    row.querySelector(".alarm-media").append(media(alarm));
    const time = row.querySelector("time");
    time.dateTime = alarm.created_at;
    time.textContent = formatTime(alarm.created_at);
    row.querySelector(".gate").textContent = t("alarm.gate", { gate: alarm.gate_id });
    row.querySelector(".status").textContent = t("status." + alarm.status);
    const local = row.querySelector(".local");
    local.textContent = t("alarm.local");
    local.hidden = !alarm.decided_locally;
    const keptBadge = row.querySelector(".kept");
    keptBadge.textContent = t("keep.badge");
    keptBadge.hidden = !kept.has(alarm.id);
    const items = row.querySelector(".alarm-items");
    alarm.items.forEach((item) => items.append(itemLine(item)));
    evidence(alarm, row.querySelector(".evidence-problem"), row.querySelector(".alarm-evidence"));
    ackControls(alarm, row.querySelector(".ack"));
    keepControls(alarm, row.querySelector(".keep"));
    return row;
  }

  function upsert(alarm, isNew) {
    const known = alarms.has(alarm.id);
    alarms.set(alarm.id, alarm);
    const row = render(alarm);
    const existing = document.getElementById("alarm-" + alarm.id);
    if (existing) {
      existing.replaceWith(row);
    } else {
      const later = [...list.children].find((other) => alarms.get(other.dataset.alarmId).created_at < alarm.created_at);
      list.insertBefore(row, later || null);
    }
    if (isNew && !known) {
      row.classList.add("fresh");
      const first = alarm.items[0] || {};
      document.getElementById("announcer").textContent =
        t("announce.new", { gate: alarm.gate_id, title: first.title || first.item_id || t("alarm.unknownItem") });
    }
    document.getElementById("alarm-empty").hidden = alarms.size > 0;
  }

  function renderAll() {
    for (const alarm of alarms.values()) upsert(alarm, false);
    document.getElementById("alarm-empty").hidden = alarms.size > 0;
  }

  // ------------------------------------------------------------------ actions

  function disable(box, disabled) {
    box.querySelectorAll("button").forEach((button) => { button.disabled = disabled; });
  }

  function showFailure(box) {
    disable(box, false);
    const note = box.querySelector(".ack-error") || box.appendChild(element("p", { class: "ack-error", role: "alert" }));
    note.textContent = t("ack.failed");
  }

  async function act(alarmId, action, body, box) {
    disable(box, true);
    try {
      const response = await api("/api/alarms/" + encodeURIComponent(alarmId) + "/" + action, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: body ? JSON.stringify(body) : null,
      });
      if (response.ok || response.status === 409) {
        const fresh = await api("/api/alarms/" + encodeURIComponent(alarmId));
        if (fresh.ok) upsert(await fresh.json(), false);
        return;
      }
      throw new Error("HTTP " + response.status);
    } catch (problem) {
      showFailure(box);
    }
  }

  async function keep(alarmId, body, box) {
    disable(box, true);
    try {
      const response = await api("/api/alarms/" + encodeURIComponent(alarmId) + "/keep", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(body),
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      markKept(await response.json());
    } catch (problem) {
      showFailure(box);
    }
  }

  function markKept(mark) {
    if (mark.kept) kept.set(mark.alarm_id, mark);
    else kept.delete(mark.alarm_id);
    const alarm = alarms.get(mark.alarm_id);
    if (alarm) upsert(alarm, false);
  }

  function openSnapshot(url, alt) {
    const dialog = document.getElementById("snapshot-dialog");
    const image = document.getElementById("snapshot-full");
    image.src = url;
    image.alt = alt;
    dialog.showModal();
  }

  // ------------------------------------------------------------------ loading and the live stream

  async function loadKept() {
    const response = await api("/api/kept-alarms");
    if (!response.ok) return;
    kept.clear();
    (await response.json()).forEach((mark) => kept.set(mark.alarm_id, mark));
  }

  async function loadAlarms(more) {
    const offset = more ? loaded : 0;
    if (!more) await loadKept();
    const response = await api("/api/alarms?limit=" + PAGE + "&offset=" + offset);
    if (!response.ok) return;
    const page = await response.json();
    page.alarms.forEach((alarm) => upsert(alarm, false));
    if (!more) renderAll(); // a mark may have changed on an alarm that did not
    loaded = Math.max(loaded, offset + page.alarms.length);
    document.getElementById("load-more").hidden = loaded >= page.total;
    document.getElementById("alarm-empty").hidden = alarms.size > 0;
  }

  function refreshAll() {
    // Fill in whatever happened while the stream was away.
    if (seesAlarms()) loadAlarms(false).catch(() => {});
    ops.loadOccupancy().catch(() => {});
    ops.loadDevices().catch(() => {});
  }

  function connect() {
    if (stream) stream.close();
    setConnection("connecting", "conn.connecting");
    // Security staff follow the alarm stream, which carries the gate events too; others the gate stream.
    stream = new EventSource(seesAlarms() ? "/api/alarms/stream" : "/api/gates/stream");
    stream.addEventListener("open", () => {
      retryMs = 1000;
      connection.dataset.connects = String(Number(connection.dataset.connects || 0) + 1);
      setConnection("live", "conn.live");
      refreshAll();
    });
    const onAlarm = (event) => upsert(JSON.parse(event.data), event.type === "alarm");
    ["alarm", "snapshot", "evidence", "alarm_updated"].forEach((name) => stream.addEventListener(name, onAlarm));
    stream.addEventListener("alarm_kept", (event) => markKept(JSON.parse(event.data)));
    stream.addEventListener("occupancy", (event) => ops.showOccupancy(JSON.parse(event.data)));
    stream.addEventListener("device_health", () => ops.loadDevices().catch(() => {}));
    stream.addEventListener("error", () => {
      setConnection("reconnecting", "conn.reconnecting");
      if (stream.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a 401 or a proxy error): retry ourselves, checking the session first.
        window.setTimeout(() => api("/api/me").then(connect, () => {}), retryMs);
        retryMs = Math.min(retryMs * 2, 15000);
      }
    });
  }

  async function start() {
    apply(document);
    setUpToggle(document.getElementById("lang-toggle"));
    onChange(() => {
      renderAll();
      ops.relabel();
      setConnection(connection.dataset.state, connectionKey);
      if (me) showUser();
    });
    document.getElementById("logout-button").addEventListener("click", async () => {
      await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
      window.location.assign("/");
    });
    document.getElementById("snapshot-close").addEventListener("click",
      () => document.getElementById("snapshot-dialog").close());
    document.getElementById("load-more").addEventListener("click", () => loadAlarms(true));
    const response = await api("/api/me");
    me = await response.json();
    showUser();
    ["occupancy-section", "live-section", "device-section"].forEach((id) => {
      document.getElementById(id).hidden = false;
    });
    if (seesAlarms()) {
      document.getElementById("alarm-section").hidden = false;
      await loadAlarms(false);
    } else {
      document.body.classList.add("no-alarms");
    }
    await Promise.all([ops.loadOccupancy(), ops.loadDevices()]);
    connect();
    // Device states change without events (a camera going stale); the day's reset too.
    window.setInterval(() => ops.loadDevices().catch(() => {}), 10000);
    window.setInterval(() => ops.loadOccupancy().catch(() => {}), 60000);
  }

  function showUser() {
    document.getElementById("current-user").textContent = t("board.user", { user: me.username,
      role: t("role." + me.role) });
  }

  start().catch(() => setConnection("reconnecting", "conn.reconnecting"));
})();
