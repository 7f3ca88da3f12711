"""The alarm board in headless Chromium, against the real backend runtime and a real broker."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from backend.api import alarms as alarms_api
from backend.config import load_backend_config
from backend.main import BackendRuntime
from openshelf.contract import Channel, Kind, TagEvent, topic
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
from tests.helpers import REPO, free_port, wait_for

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT = REPO / "docs" / "dashboard.png"
UPDATE_SCREENSHOT_ENV = "OPENSHELF_UPDATE_SCREENSHOTS"


class Board:
    def __init__(self, url: str, site: str, device: MqttLink, accounts: dict[str, tuple[str, str]]) -> None:
        self.url = url
        self.site = site
        self.device = device
        self.accounts = accounts

    def walk_out_with(self, item_id: str) -> None:
        event = TagEvent(reader_id=READER_ID, gate_id=GATE_ID, uid=tag_uid_for(item_id), item_id=item_id)
        self.device.publish(topic(self.site, Kind.READER, READER_ID, Channel.EVENT, "tag_arrived"), event)

    def upload_snapshot(self, alarm_id: str, label: str) -> None:
        token = base64.b64encode(f"{CAMERA_ID}:{CAMERA_SECRET}".encode()).decode()
        response = httpx.put(f"{self.url}/api/evidence/{alarm_id}/snapshot", content=snapshot_jpeg(640, 360, label),
                             headers={"Authorization": f"Basic {token}", "Content-Type": "image/jpeg",
                                      "X-Captured-At": "2025-03-01T09:30:00+07:00"}, timeout=10)
        assert response.status_code == 201, response.text


@pytest.fixture
def board(tmp_path: Path, broker_url: str, site_id: str) -> Iterator[Board]:
    broker_port = BrokerSettings(url=broker_url).port
    config = load_backend_config(write_site(tmp_path, site_id=site_id, broker_port=broker_port))
    runtime = BackendRuntime(config, passwords=cheap_passwords())
    device = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-{READER_ID}")
    runtime.start()
    try:
        assert device.start(wait_s=5)
        wait_for(lambda: runtime.gate_service.gate_reads == 0 and runtime.link.connected.is_set(),
                 what="backend connected")
        with ServerThread(runtime.app, free_port()) as server:
            from backend.demo_seed import ensure_demo_accounts

            yield Board(server.url, site_id, device, ensure_demo_accounts(config.data_dir))
            runtime.notifier.close()
    finally:
        device.stop()
        runtime.stop()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 860}, locale="vi-VN",
                                          timezone_id="Asia/Ho_Chi_Minh")
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def test_login_alarm_and_snapshot_appear_live(board: Board, page, tmp_path: Path,  # noqa: ANN001
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect

    # Streams end every few seconds, so the test also sees the board reconnect by itself.
    monkeypatch.setattr(alarms_api, "MAX_STREAM_S", 3.0)
    page.goto(board.url)
    username, password = board.accounts["security"]
    page.fill("#username", username)
    page.fill("#password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("Sai tên đăng nhập hoặc mật khẩu.")

    page.fill("#password", password)
    page.click("#login-submit")
    expect(page.locator("[data-testid=connection-status]")).to_have_attribute("data-state", "live")
    expect(page.locator("[data-testid=alarm-empty]")).to_be_visible()

    board.walk_out_with("I0002")  # on loan: no alarm
    board.walk_out_with("I0008")  # in-library only
    board.walk_out_with("I0003")  # not on loan
    rows = page.locator("[data-testid=alarm-row]")
    expect(rows).to_have_count(2)
    newest = rows.first
    expect(newest).to_contain_text("Dế Mèn phiêu lưu ký")
    expect(newest.locator("[data-testid=alarm-reason]")).to_have_text("Chưa mượn")
    expect(rows.nth(1).locator("[data-testid=alarm-reason]")).to_have_text("Chỉ đọc tại chỗ")
    expect(page.locator("[data-testid=alarm-row]", has_text="Số đỏ")).to_have_count(0)
    expect(newest.locator("[data-testid=alarm-no-snapshot]")).to_be_visible()
    expect(newest.locator("[data-testid=alarm-local-badge]")).to_be_hidden()

    board.upload_snapshot(newest.get_attribute("data-alarm-id"), "I0003 GATE 1")
    snapshot = newest.locator("[data-testid=alarm-snapshot]")
    expect(snapshot).to_be_visible()
    wait_for(lambda: snapshot.evaluate("image => image.complete && image.naturalWidth") == 640,
             what="the snapshot image loaded")

    rows.nth(1).locator("[data-testid=ack-false_alarm]").click()
    expect(rows.nth(1)).to_have_attribute("data-status", "acknowledged")
    expect(rows.nth(1).locator("[data-testid=alarm-ack-info]")).to_contain_text(username)

    page.click("[data-testid=lang-toggle]")
    expect(newest.locator("[data-testid=alarm-reason]")).to_have_text("Not checked out")
    expect(page.locator("[data-testid=connection-status]")).to_contain_text(re.compile("Live|reconnecting"))
    page.click("[data-testid=lang-toggle]")
    expect(page.locator("html")).to_have_attribute("lang", "vi")

    snapshot.click()
    expect(page.locator("[data-testid=snapshot-dialog]")).to_be_visible()
    page.click("#snapshot-close")

    indicator = page.locator("[data-testid=connection-status]")
    wait_for(lambda: int(indicator.get_attribute("data-connects") or 0) >= 2, timeout_s=15,
             what="the board reconnecting after its stream ended")
    expect(indicator).to_have_attribute("data-state", "live")
    board.walk_out_with("I0004")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Tắt đèn")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get(UPDATE_SCREENSHOT_ENV):
        shutil.copyfile(shot, SCREENSHOT)
