"""Patron cards on an nfcpy reader: the debounce logic, nfcpy's target mapping, and nfcpy's udp: driver.

The udp: driver is nfcpy's own hardware-free test facility: one ContactlessFrontend
emulates a card (``listen``) and the reader under test senses it over loopback UDP.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import nfc
import nfc.clf
import pytest
import yaml

from openshelf.contract import CardPresented, CardTechnology, Channel, Kind, topic
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings

from rfid.nfc import CardRead, CardReaderError, CardService, NfcpyCardReader, SimulatedCardReader, card_from_target
from tests.helpers import Mosquitto, Proc, wait_for
from tests.rfid.reader_service_kit import FakeClock, RecordingLink

FELICA_IDM = "0101020304050607"
SENSF_RES = bytearray.fromhex("01" + FELICA_IDM + "FFFFFFFFFFFFFFFF" + "12FC")
TYPE_A_UID = "04497622D93881"


def make_service(reader: object, link: RecordingLink, clock: FakeClock | None = None,
                 **options: float) -> CardService:
    return CardService(reader=reader, link=link, reader_id="pad-1",  # type: ignore[arg-type]
                       site="unit", root="openshelf", clock=clock or time.monotonic, **options)


# --------------------------------------------------------------------------- debounce (simulated reader)


def test_a_card_held_on_the_pad_is_one_event_and_a_new_presentation_is_another() -> None:
    reader, link, clock = SimulatedCardReader(), RecordingLink(), FakeClock()
    service = make_service(reader, link, clock, removed_after_s=0.5)
    reader.present("04a1b2c3d4e5f6", CardTechnology.ISO14443A)
    for _ in range(30):
        service.poll_once()
        clock.advance(0.1)
    assert [(card.card_id, card.technology) for card in link.events("card_presented")] == [
        ("04A1B2C3D4E5F6", CardTechnology.ISO14443A)]
    reader.take_away()
    service.poll_once()
    clock.advance(0.2)  # a flicker shorter than removed_after_s
    reader.present("04a1b2c3d4e5f6")
    service.poll_once()
    assert len(link.events("card_presented")) == 1
    reader.take_away()
    for _ in range(6):
        service.poll_once()
        clock.advance(0.1)
    reader.present("04a1b2c3d4e5f6")
    service.poll_once()
    assert len(link.events("card_presented")) == 2


def test_swapping_cards_publishes_the_new_card() -> None:
    reader, link = SimulatedCardReader(), RecordingLink()
    service = make_service(reader, link)
    reader.present("AA000001", CardTechnology.ISO14443B)
    service.poll_once()
    reader.present("AA000002", CardTechnology.ISO14443B)
    service.poll_once()
    assert [card.card_id for card in link.events("card_presented")] == ["AA000001", "AA000002"]


def test_reader_failures_do_not_stop_the_service() -> None:
    reader, link = SimulatedCardReader(), RecordingLink()
    service = make_service(reader, link)
    reader.fail_next_polls(2)
    reader.present(FELICA_IDM, CardTechnology.FELICA)
    assert service.poll_once() is False and service.poll_once() is False
    assert service.poll_once() is True
    assert [card.card_id for card in link.events("card_presented")] == [FELICA_IDM]


def test_run_loop_stops_promptly() -> None:
    reader, link = SimulatedCardReader(), RecordingLink()
    service = make_service(reader, link, None, poll_interval_s=0.01)
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,), name="card-service")
    runner.start()
    reader.present("04A1B2C3")
    wait_for(lambda: link.events("card_presented"), timeout_s=5, what="card event")
    stop.set()
    runner.join(5)
    assert not runner.is_alive()


# --------------------------------------------------------------------------- nfcpy


def test_nfcpy_targets_map_to_card_ids() -> None:
    type_a = nfc.clf.RemoteTarget("106A", sdd_res=bytearray.fromhex(TYPE_A_UID), sens_res=bytearray(b"\x44\x00"),
                                  sel_res=bytearray(b"\x00"))
    type_b = nfc.clf.RemoteTarget("106B", sensb_res=bytearray.fromhex("50E5DD3DC900000011008185"))
    felica = nfc.clf.RemoteTarget("212F", sensf_res=SENSF_RES)
    assert card_from_target(type_a) == CardRead(TYPE_A_UID, CardTechnology.ISO14443A)
    assert card_from_target(type_b) == CardRead("E5DD3DC9", CardTechnology.ISO14443B)  # the PUPI
    assert card_from_target(felica) == CardRead(FELICA_IDM, CardTechnology.FELICA)  # the IDm
    assert card_from_target(nfc.clf.RemoteTarget("106B", sensb_res=bytearray(b"\x50"))) is None


def test_opening_a_missing_reader_is_a_card_reader_error() -> None:
    reader = NfcpyCardReader("tty:OPENSHELF_NO_SUCH_PORT:pn532")
    with pytest.raises(CardReaderError, match="cannot open NFC reader"):
        reader.open()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))  # where nfcpy's listener binds
        except OSError:
            return True
    return False


class CardEmulator:
    """A card on the pad: an nfcpy frontend on the udp: driver answering as a FeliCa or Type A card."""

    def __init__(self, port: int, target: nfc.clf.LocalTarget) -> None:
        self._port = port
        self._path = f"udp:127.0.0.1:{port}"
        self._target = target
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "CardEmulator":
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="nfc-card-emulator")
        self._thread.start()
        # A reader that senses before the card listens waits out the udp: driver's 1 s timeout.
        wait_for(lambda: _udp_port_taken(self._port), timeout_s=5, interval_s=0.005, what="card emulator listening")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)

    def _listen(self) -> None:
        frontend = nfc.ContactlessFrontend(self._path)
        try:
            while not self._stop.is_set():
                frontend.listen(self._target, 0.2)
        finally:
            frontend.close()


def felica() -> nfc.clf.LocalTarget:
    return nfc.clf.LocalTarget("212F", sensf_res=SENSF_RES)


def type_a() -> nfc.clf.LocalTarget:
    return nfc.clf.LocalTarget("106A", sens_res=bytearray.fromhex("4400"), sdd_res=bytearray.fromhex(TYPE_A_UID),
                               sel_res=bytearray.fromhex("00"))


@pytest.fixture
def udp_port() -> int:
    return free_udp_port()


def test_nfcpy_reads_an_emulated_type_a_card_over_udp(udp_port: int) -> None:
    reader = NfcpyCardReader(f"udp:127.0.0.1:{udp_port}", targets=["106A"])
    try:
        with CardEmulator(udp_port, type_a()):
            card = wait_for(reader.poll, timeout_s=5, what="Type A card")
    finally:
        reader.close()
    assert (card.card_id, card.technology) == (TYPE_A_UID, CardTechnology.ISO14443A)


def test_card_service_publishes_an_emulated_felica_card_held_on_the_pad_once(udp_port: int) -> None:
    reader, link = NfcpyCardReader(f"udp:127.0.0.1:{udp_port}", targets=["212F"]), RecordingLink()
    service = make_service(reader, link, None, poll_interval_s=0.02, removed_after_s=0.3)
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,), name="card-service")
    try:
        with CardEmulator(udp_port, felica()):
            runner.start()
            wait_for(lambda: link.events("card_presented"), timeout_s=5, what="first presentation")
            polls_then = service.polls
            wait_for(lambda: service.polls - polls_then >= 10, timeout_s=5, what="10 polls with the card held")
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(5)
        reader.close()
    # Presenting it again after a gap is another event: see the simulated-reader test above (an empty
    # poll costs the udp: driver a 1 s timeout, too slow to repeat here).
    cards = link.events("card_presented")
    assert [(card.card_id, card.technology) for card in cards] == [(FELICA_IDM, CardTechnology.FELICA)]


def test_openshelf_rfid_nfc_publishes_card_presented(mosquitto: Mosquitto, tmp_path: Path, udp_port: int) -> None:
    site = f"t{uuid.uuid4().hex[:10]}"
    document = {"site": site, "demo": True, "broker": {"url": mosquitto.url},
                "readers": [{"id": "kiosk-nfc", "role": "pad", "port": f"udp:127.0.0.1:{udp_port}"}]}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    received: list[CardPresented] = []
    observer = MqttLink(BrokerSettings(url=mosquitto.url), client_id=f"{site}-observer")
    observer.subscribe(topic(site, Kind.READER, "kiosk-nfc", Channel.EVENT, "card_presented"), CardPresented,
                       lambda parts, card: received.append(card))
    assert observer.start()
    proc = Proc("rfid-nfc", ["rfid", "nfc", "--site", str(tmp_path / "site.yaml"), "--device", "kiosk-nfc",
                             "--targets", "212F"], tmp_path / "nfc.log")
    try:
        proc.start()
        with CardEmulator(udp_port, felica()):
            wait_for(lambda: received, timeout_s=10, what="card_presented over MQTT")
    finally:
        code = proc.stop()
        observer.stop()
    assert code == 0 and "Traceback" not in proc.log_text()
    assert (received[0].card_id, received[0].technology, received[0].reader_id) == (
        FELICA_IDM, CardTechnology.FELICA, "kiosk-nfc")

