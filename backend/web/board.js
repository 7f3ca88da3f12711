/* The alarm board: loads alarms, follows /api/alarms/stream live, lets staff acknowledge. */
"use strict";

(function () {
  const { t, has, apply, formatTime, setUpToggle, onChange } = window.OpenShelfI18n;
  const PAGE = 50;
  const OUTCOMES = ["returned_to_desk", "checked_out", "false_alarm", "patron_left"];
  const alarms = new Map();
  const list = document.getElementById("alarm-list");
  const template = document.getElementById("alarm-template");
  const connection = document.getElementById("connection-status");
  let me = null;
  let stream = null;
  let retryMs = 1000;
  let connectionKey = "conn.connecting";
  let loaded = 0;

  // ------------------------------------------------------------------ helpers

  async function api(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin",
      headers: { "Accept": "application/json" } }, options || {}));
    if (response.status === 401) {
      window.location.reload(); // the server shows the login page
      throw new Error("logged out");
    }
    return response;
  }

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setConnection(state, key) {
    connection.dataset.state = state;
    connectionKey = key;
    document.getElementById("connection-label").textContent = t(key);
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

  function render(alarm) {
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.alarmId = alarm.id;
    row.dataset.status = alarm.status;
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
    const items = row.querySelector(".alarm-items");
    alarm.items.forEach((item) => items.append(itemLine(item)));
    const problem = row.querySelector(".evidence-problem");
    if (alarm.evidence_problem) {
      problem.textContent = t("alarm.evidenceProblem", { problem: alarm.evidence_problem });
      problem.hidden = false;
    }
    ackControls(alarm, row.querySelector(".ack"));
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

  async function act(alarmId, action, body, box) {
    box.querySelectorAll("button").forEach((button) => { button.disabled = true; });
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
      box.querySelectorAll("button").forEach((button) => { button.disabled = false; });
      const note = box.querySelector(".ack-error")
        || box.appendChild(element("p", { class: "ack-error", role: "alert" }));
      note.textContent = t("ack.failed");
    }
  }

  function openSnapshot(url, alt) {
    const dialog = document.getElementById("snapshot-dialog");
    const image = document.getElementById("snapshot-full");
    image.src = url;
    image.alt = alt;
    dialog.showModal();
  }

  // ------------------------------------------------------------------ loading and the live stream

  async function loadAlarms(more) {
    const offset = more ? loaded : 0;
    const response = await api("/api/alarms?limit=" + PAGE + "&offset=" + offset);
    if (!response.ok) return;
    const page = await response.json();
    page.alarms.forEach((alarm) => upsert(alarm, false));
    loaded = Math.max(loaded, offset + page.alarms.length);
    document.getElementById("load-more").hidden = loaded >= page.total;
    document.getElementById("alarm-empty").hidden = alarms.size > 0;
  }

  function connect() {
    if (stream) stream.close();
    setConnection("connecting", "conn.connecting");
    stream = new EventSource("/api/alarms/stream");
    stream.addEventListener("open", () => {
      retryMs = 1000;
      connection.dataset.connects = String(Number(connection.dataset.connects || 0) + 1);
      setConnection("live", "conn.live");
      loadAlarms(false).catch(() => {}); // fill whatever happened while disconnected
    });
    const onAlarm = (event) => upsert(JSON.parse(event.data), event.type === "alarm");
    ["alarm", "snapshot", "evidence", "alarm_updated"].forEach((name) => stream.addEventListener(name, onAlarm));
    stream.addEventListener("error", () => {
      setConnection("reconnecting", "conn.reconnecting");
      if (stream.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a 401 or a proxy error): retry ourselves, checking the session first.
        window.setTimeout(() => api("/api/me").then(connect, () => {}), retryMs);
        retryMs = Math.min(retryMs * 2, 15000);
      }
    });
  }

  async function loadDevices() {
    const response = await api("/api/devices");
    if (!response.ok) return;
    const body = document.querySelector("#device-table tbody");
    body.replaceChildren();
    for (const device of await response.json()) {
      const row = element("tr", { "data-testid": "device-row", "data-device-id": device.id });
      const status = device.online === true ? "devices.online" : device.online === false ? "devices.offline"
        : "devices.unknown";
      row.append(element("td", {}, device.id + (device.name ? " — " + device.name : "")),
        element("td", {}, device.kind),
        element("td", { "data-state": String(device.online) }, t(status)),
        element("td", {}, formatTime(device.last_seen)),
        element("td", { class: "state" }, device.state ? JSON.stringify(device.state) : ""));
      body.append(row);
    }
  }

  async function start() {
    apply(document);
    setUpToggle(document.getElementById("lang-toggle"));
    onChange(() => {
      renderAll();
      setConnection(connection.dataset.state, connectionKey);
      if (me) showUser();
      if (!document.getElementById("device-section").hidden) loadDevices().catch(() => {});
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
    if (me.role === "security" || me.role === "admin") {
      document.getElementById("alarm-section").hidden = false;
      await loadAlarms(false);
      connect();
    } else {
      setConnection("idle", "conn.live");
      connection.hidden = true;
    }
    if (me.role === "technician" || me.role === "admin") {
      document.getElementById("device-section").hidden = false;
      await loadDevices();
      window.setInterval(() => loadDevices().catch(() => {}), 10000);
    }
  }

  function showUser() {
    document.getElementById("current-user").textContent = t("board.user", { user: me.username,
      role: t("role." + me.role) });
  }

  start().catch(() => setConnection("reconnecting", "conn.reconnecting"));
})();
