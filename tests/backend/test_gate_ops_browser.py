"""The board's gate-operation panels in headless Chromium: live occupancy, device health, live view, keeping."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from backend.config import load_backend_config
from backend.demo_seed import ensure_demo_accounts
from backend.main import BackendRuntime
from openshelf.contract import BeamFaultEvent, Channel, Kind, Message, PassageEvent, TagEvent, topic, utcnow
from openshelf.demo_catalog import tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from tests.backend.backend_testkit import (
    CAMERA_ID,
    CAMERA_SECRET,
    GATE_ID,
    READER_ID,
    ServerThread,
    cheap_passwords,
    snapshot_jpeg,
    write_site,
)
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


class Library:
    """A running backend on a real broker, and a gate, a reader and a camera talking to it."""

    def __init__(self, url: str, site: str, device: MqttLink, accounts: dict[str, tuple[str, str]]) -> None:
        self.url = url
        self.site = site
        self.device = device
        self.accounts = accounts

    def send(self, kind: Kind, device_id: str, name: str, message: Message) -> None:
        self.device.publish(topic(self.site, kind, device_id, Channel.EVENT, name), message).wait_for_publish(5)

    def walk(self, direction: str) -> None:
        self.send(Kind.GATE, GATE_ID, "passage", PassageEvent(gate_id=GATE_ID, direction=direction, at=utcnow()))

    def push_live(self, label: str) -> httpx.Response:
        token = base64.b64encode(f"{CAMERA_ID}:{CAMERA_SECRET}".encode()).decode()
        return httpx.put(f"{self.url}/api/cameras/{CAMERA_ID}/live", content=snapshot_jpeg(640, 360, label),
                         headers={"Authorization": f"Basic {token}", "Content-Type": "image/jpeg"}, timeout=10)


@pytest.fixture
def library(tmp_path: Path, broker_url: str, site_id: str) -> Iterator[Library]:
    config = load_backend_config(write_site(tmp_path, site_id=site_id, broker_port=BrokerSettings(url=broker_url).port))
    runtime = BackendRuntime(config, passwords=cheap_passwords())
    device = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-devices")
    runtime.start()
    try:
        assert device.start(wait_s=5)
        wait_for(runtime.link.connected.is_set, what="backend connected")
        with ServerThread(runtime.app, free_port()) as server:
            yield Library(server.url, site_id, device, ensure_demo_accounts(config.data_dir))
            runtime.notifier.close()
    finally:
        device.stop()
        runtime.stop()


@pytest.fixture
def page() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                          timezone_id="Asia/Ho_Chi_Minh")
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def log_in(page, library: Library, role: str) -> None:  # noqa: ANN001
    username, password = library.accounts[role]
    page.goto(library.url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")


def test_occupancy_devices_live_view_and_keeping_on_the_board(library: Library, page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    log_in(page, library, "security")
    expect(page.locator("[data-testid=connection-status]")).to_have_attribute("data-state", "live")
    total = page.locator("[data-testid=occupancy-total] [data-testid=occupancy-count]")
    expect(total).to_have_text("0")

    library.walk("in")
    library.walk("in")
    expect(total).to_have_text("2")
    library.walk("out")
    expect(total).to_have_text("1")
    gate = page.locator(f"[data-testid=occupancy-gate][data-gate-id={GATE_ID}]")
    expect(gate.locator("[data-testid=occupancy-in-out]")).to_have_text("Vào 2 · Ra 1")

    library.send(Kind.GATE, GATE_ID, "beam_fault",
                 BeamFaultEvent(gate_id=GATE_ID, beam="beam_a", stuck=True, since=utcnow()))
    gate_row = page.locator(f"[data-testid=device-row][data-device-id={GATE_ID}]")
    expect(gate_row).to_have_attribute("data-condition", "fault")
    expect(gate_row.locator("[data-testid=device-problem]")).to_contain_text("Tia cảm biến bị chặn hoặc hỏng")
    expect(gate.locator("[data-testid=occupancy-beam-fault]")).to_be_visible()

    camera = page.locator(f"[data-testid=live-camera][data-camera-id={CAMERA_ID}]")
    camera.locator("[data-testid=live-toggle]").click()
    expect(camera.locator("[data-testid=live-empty]")).to_have_text("Chưa có hình từ camera này.")
    assert library.push_live("LIVE 1").status_code == 204
    image = camera.locator("[data-testid=live-image]")
    expect(image).to_be_visible(timeout=10_000)
    wait_for(lambda: image.evaluate("image => image.complete && image.naturalWidth") == 640,
             what="the live frame loaded")
    wait_for(lambda: library.push_live("LIVE 2").headers["X-Live-Viewers"] == "1", what="the camera sees a viewer")
    camera.locator("[data-testid=live-toggle]").click()
    expect(image).to_be_hidden()

    library.send(Kind.READER, READER_ID, "tag_arrived",
                 TagEvent(reader_id=READER_ID, gate_id=GATE_ID, uid=tag_uid_for("I0003"), item_id="I0003"))
    row = page.locator("[data-testid=alarm-row]").first
    expect(row).to_be_visible()
    row.locator("[data-testid=keep-note]").fill("biên bản 12")
    row.locator("[data-testid=keep-toggle]").click()
    expect(row).to_have_attribute("data-kept", "true")
    expect(row.locator("[data-testid=alarm-kept-info]")).to_contain_text("biên bản 12")
    expect(row.locator("[data-testid=alarm-kept-badge]")).to_be_visible()
    row.locator("[data-testid=keep-toggle]").click()
    expect(row).to_have_attribute("data-kept", "false")

    page.click("[data-testid=lang-toggle]")
    expect(gate.locator("[data-testid=occupancy-in-out]")).to_have_text("In 2 · Out 1")
    expect(row.locator("[data-testid=keep-toggle]")).to_have_text("Keep for an incident")
