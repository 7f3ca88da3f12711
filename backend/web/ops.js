/* Gate operations on the board: people inside (live), device health, and the cameras' live view. */
"use strict";

(function () {
  const { t, formatTime } = window.OpenShelfI18n;
  const { api, element } = window.OpenShelfDom;
  const LIVE_REFRESH_MS = 1000;
  const LIVE_RETRY_MS = 3000;
  const cards = document.getElementById("occupancy-cards");
  const liveList = document.getElementById("live-cameras");
  const liveTemplate = document.getElementById("live-template");
  const watching = new Map(); // camera id → pending refresh timer (or null while a frame loads)
  let occupancy = null;
  let devices = [];

  // ------------------------------------------------------------------ occupancy

  async function loadOccupancy() {
    const response = await api("/api/gates/occupancy");
    if (response.ok) showOccupancy(await response.json());
  }

  function showOccupancy(data) {
    occupancy = data;
    renderOccupancy();
  }

  function renderOccupancy() {
    if (!occupancy) return;
    fillCard(cards.querySelector("[data-testid=occupancy-total]"), occupancy.total);
    const shown = new Set();
    for (const gate of occupancy.gates) {
      shown.add(gate.gate_id);
      const card = gateCard(gate.gate_id);
      fillCard(card, gate);
      card.querySelector(".occupancy-label").textContent = gate.name || t("occupancy.gate", { gate: gate.gate_id });
      const fault = card.querySelector(".occupancy-beam-fault");
      fault.textContent = t("occupancy.beamFault");
      fault.hidden = !gate.beam_fault;
    }
    cards.querySelectorAll("[data-testid=occupancy-gate]").forEach((card) => {
      if (!shown.has(card.dataset.gateId)) card.remove();
    });
    document.getElementById("occupancy-since").textContent = t("occupancy.since",
      { time: formatTime(occupancy.since) });
  }

  function gateCard(gateId) {
    const existing = [...cards.querySelectorAll("[data-testid=occupancy-gate]")]
      .find((card) => card.dataset.gateId === gateId);
    if (existing) return existing;
    const card = element("div", { class: "occupancy-card", "data-testid": "occupancy-gate", "data-gate-id": gateId });
    card.append(element("span", { class: "occupancy-label" }),
      element("span", { class: "occupancy-count", "data-testid": "occupancy-count" }),
      element("span", { class: "occupancy-in-out", "data-testid": "occupancy-in-out" }),
      element("span", { class: "occupancy-drift", "data-testid": "occupancy-drift", hidden: "" }),
      element("span", { class: "occupancy-beam-fault", "data-testid": "occupancy-beam-fault", hidden: "" }));
    cards.append(card);
    return card;
  }

  function fillCard(card, counts) {
    card.dataset.drift = String(counts.drift);
    card.querySelector(".occupancy-count").textContent = String(counts.occupancy);
    card.querySelector(".occupancy-in-out").textContent = t("occupancy.inOut",
      { entries: counts.entries, exits: counts.exits });
    const drift = card.querySelector(".occupancy-drift");
    drift.textContent = t("occupancy.drift", { net: counts.net });
    drift.hidden = !counts.drift;
  }

  // ------------------------------------------------------------------ devices

  async function loadDevices() {
    const response = await api("/api/devices/health");
    if (!response.ok) return;
    devices = await response.json();
    renderDevices();
    renderLiveCameras();
  }

  function problemText(problem) {
    let text = t("problem." + problem.code);
    if (problem.detail) text += ": " + problem.detail;
    if (problem.since) text += " " + t("devices.since", { time: formatTime(problem.since) });
    return text;
  }

  function renderDevices() {
    const body = document.querySelector("#device-table tbody");
    body.replaceChildren();
    for (const device of devices) {
      const row = element("tr", { "data-testid": "device-row", "data-device-id": device.id,
        "data-condition": device.condition });
      const status = device.online === true ? "devices.online" : device.online === false ? "devices.offline"
        : "devices.unknown";
      const problems = element("ul", { class: "device-problems" });
      device.problems.forEach((problem) => problems.append(element("li", { "data-testid": "device-problem",
        "data-code": problem.code }, problemText(problem))));
      const details = element("td", { class: "details" });
      details.append(problems);
      if (device.state) {
        const raw = element("details");
        raw.append(element("summary", {}, t("devices.state")),
          element("pre", { class: "state" }, JSON.stringify(device.state, null, 1)));
        details.append(raw);
      }
      row.append(element("td", {}, device.id + (device.name ? " — " + device.name : "")),
        element("td", {}, t("kind." + device.kind)),
        element("td", { "data-state": String(device.online) }, t(status)),
        element("td", { class: "condition", "data-condition": device.condition }, t("condition." + device.condition)),
        element("td", {}, formatTime(device.last_seen)),
        details);
      body.append(row);
    }
  }

  // ------------------------------------------------------------------ live view

  function renderLiveCameras() {
    const cameras = devices.filter((device) => device.kind === "camera" && device.configured);
    document.getElementById("live-none").hidden = cameras.length > 0;
    for (const camera of cameras) {
      const figure = liveFigure(camera.id);
      figure.querySelector(".live-name").textContent = camera.name || camera.id;
      figure.dataset.condition = camera.condition;
      figure.querySelector(".live-state").textContent = camera.problems.length
        ? camera.problems.map(problemText).join("; ") : t("condition." + camera.condition);
      const image = figure.querySelector(".live-image");
      image.alt = t("live.alt", { camera: camera.name || camera.id });
      figure.querySelector(".live-empty").textContent = t("live.empty");
      labelToggle(figure);
    }
  }

  function liveFigure(cameraId) {
    const existing = [...liveList.children].find((figure) => figure.dataset.cameraId === cameraId);
    if (existing) return existing;
    const figure = liveTemplate.content.firstElementChild.cloneNode(true);
    figure.dataset.cameraId = cameraId;
    const image = figure.querySelector(".live-image");
    image.addEventListener("load", () => frameArrived(cameraId, figure));
    image.addEventListener("error", () => frameMissing(cameraId, figure));
    figure.querySelector(".live-toggle").addEventListener("click", () => toggleLive(cameraId, figure));
    liveList.append(figure);
    return figure;
  }

  function labelToggle(figure) {
    const on = watching.has(figure.dataset.cameraId);
    const button = figure.querySelector(".live-toggle");
    figure.dataset.watching = String(on);
    button.textContent = t(on ? "live.stop" : "live.start");
    button.setAttribute("aria-pressed", String(on));
  }

  function toggleLive(cameraId, figure) {
    if (watching.has(cameraId)) {
      window.clearTimeout(watching.get(cameraId));
      watching.delete(cameraId);
      const image = figure.querySelector(".live-image");
      image.removeAttribute("src");
      image.hidden = true;
      figure.querySelector(".live-empty").hidden = true;
      figure.querySelector(".live-updated").textContent = "";
    } else {
      watching.set(cameraId, null);
      fetchFrame(cameraId, figure);
    }
    labelToggle(figure);
  }

  function fetchFrame(cameraId, figure) {
    if (!watching.has(cameraId)) return;
    if (document.hidden) { // nobody looks: do not fetch (nor count as a viewer) until the page is visible again
      watching.set(cameraId, window.setTimeout(() => fetchFrame(cameraId, figure), LIVE_REFRESH_MS));
      return;
    }
    watching.set(cameraId, null);
    figure.querySelector(".live-image").src = "/api/cameras/" + encodeURIComponent(cameraId) + "/live.jpg?t="
      + Date.now();
  }

  function frameArrived(cameraId, figure) {
    if (!watching.has(cameraId)) return;
    figure.querySelector(".live-image").hidden = false;
    figure.querySelector(".live-empty").hidden = true;
    figure.querySelector(".live-updated").textContent = t("live.updated",
      { time: new Date().toLocaleTimeString(window.OpenShelfI18n.current() === "vi" ? "vi-VN" : "en-GB") });
    watching.set(cameraId, window.setTimeout(() => fetchFrame(cameraId, figure), LIVE_REFRESH_MS));
  }

  function frameMissing(cameraId, figure) {
    if (!watching.has(cameraId)) return;
    figure.querySelector(".live-image").hidden = true;
    figure.querySelector(".live-empty").hidden = false;
    watching.set(cameraId, window.setTimeout(() => fetchFrame(cameraId, figure), LIVE_RETRY_MS));
  }

  function relabel() {
    renderOccupancy();
    renderDevices();
    renderLiveCameras();
  }

  window.OpenShelfOps = { loadOccupancy, showOccupancy, loadDevices, relabel };
})();
