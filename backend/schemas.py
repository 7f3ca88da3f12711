"""Request and response bodies of the JSON API (they also document it at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.db.models import AlarmOutcome, AlarmStatus, EvidenceKind, StaffRole
from openshelf.contract import AlarmReason

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
ALARM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
ITEM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(Strict):
    username: str
    role: StaffRole


class Health(Strict):
    status: Literal["ok", "degraded"]
    database: bool
    mqtt: bool | None = Field(description="broker connection; null when the backend runs without one")


class AlarmItemOut(Strict):
    uid: str
    item_id: str | None
    title: str | None
    reason: AlarmReason | str


class EvidenceOut(Strict):
    id: str
    camera_id: str
    kind: EvidenceKind
    url: str | None = Field(description="where to fetch the file; null when only a problem was reported")
    content_type: str | None
    captured_at: datetime | None
    problem: str | None


class AlarmOut(Strict):
    id: str
    gate_id: str
    created_at: datetime
    decided_locally: bool
    status: AlarmStatus
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    outcome: AlarmOutcome | None
    note: str | None
    items: list[AlarmItemOut]
    snapshot_url: str | None
    evidence_problem: str | None
    evidence: list[EvidenceOut]


class AlarmPage(Strict):
    alarms: list[AlarmOut]
    total: int
    offset: int
    limit: int


class AcknowledgeRequest(Strict):
    outcome: AlarmOutcome
    note: str | None = Field(default=None, max_length=2000)


class EvidenceCreated(Strict):
    evidence_id: str
    alarm_id: str
    linked: bool = Field(description="whether the alarm record already exists")


class EvidenceProblemReport(Strict):
    """A camera has no (usable) evidence for an alarm and says why."""

    camera_id: str = Field(min_length=1, max_length=64)
    kind: EvidenceKind
    problem: str = Field(min_length=1, max_length=500)


class DeviceOut(Strict):
    id: str
    kind: str
    name: str
    configured: bool
    online: bool | None
    last_seen: datetime | None
    state: dict[str, object] | None


class LoanRequest(Strict):
    item_id: str = Field(pattern=ITEM_ID_PATTERN)
    patron_barcode: str = Field(pattern=ITEM_ID_PATTERN)


class ReturnRequest(Strict):
    item_id: str = Field(pattern=ITEM_ID_PATTERN)


class LoanOut(Strict):
    id: int
    item_id: str
    patron_barcode: str
    checked_out_at: datetime
    due_at: datetime
    returned_at: datetime | None
