"""Reading alarms with their items and evidence, shaped the way the API and the live stream send them."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.models import Alarm, AlarmItemRow, Evidence, EvidenceKind, Item
from backend.schemas import AlarmItemOut, AlarmOut, AlarmPage, EvidenceOut


def evidence_url(evidence_id: str) -> str:
    return f"/api/evidence/{evidence_id}"


def alarm_out(session: Session, alarm_id: str) -> AlarmOut | None:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        return None
    return _shape(session, [alarm])[0]


def alarms_out(session: Session, alarm_ids: list[str]) -> list[AlarmOut]:
    """Several alarms at once (three queries whatever their number), in the order asked."""
    rows = {alarm.id: alarm for alarm in session.scalars(select(Alarm).where(Alarm.id.in_(alarm_ids)))}
    return _shape(session, [rows[alarm_id] for alarm_id in alarm_ids if alarm_id in rows])


def alarm_page(session: Session, *, offset: int, limit: int, status: str | None = None) -> AlarmPage:
    query = select(Alarm)
    counter = select(func.count()).select_from(Alarm)
    if status is not None:
        query = query.where(Alarm.status == status)
        counter = counter.where(Alarm.status == status)
    alarms = list(session.scalars(query.order_by(Alarm.created_at.desc(), Alarm.id.desc()).offset(offset).limit(limit)))
    total = session.scalar(counter) or 0
    return AlarmPage(alarms=_shape(session, alarms), total=total, offset=offset, limit=limit)


def _shape(session: Session, alarms: list[Alarm]) -> list[AlarmOut]:
    ids = [alarm.id for alarm in alarms]
    items = _items_by_alarm(session, ids)
    evidence = _evidence_by_alarm(session, ids)
    return [_alarm(alarm, items[alarm.id], evidence[alarm.id]) for alarm in alarms]


def _items_by_alarm(session: Session, ids: list[str]) -> dict[str, list[AlarmItemOut]]:
    rows = session.execute(
        select(AlarmItemRow, Item.title)
        .outerjoin(Item, Item.item_id == AlarmItemRow.item_id)
        .where(AlarmItemRow.alarm_id.in_(ids))
        .order_by(AlarmItemRow.id)
    )
    grouped: dict[str, list[AlarmItemOut]] = defaultdict(list)
    for row, title in rows:
        grouped[row.alarm_id].append(AlarmItemOut(uid=row.uid, item_id=row.item_id, title=title, reason=row.reason))
    return grouped


def _evidence_by_alarm(session: Session, ids: list[str]) -> dict[str, list[Evidence]]:
    rows = session.scalars(
        select(Evidence).where(Evidence.alarm_id.in_(ids)).order_by(Evidence.created_at, Evidence.id)
    )
    grouped: dict[str, list[Evidence]] = defaultdict(list)
    for row in rows:
        grouped[row.alarm_id].append(row)
    return grouped


def _alarm(alarm: Alarm, items: list[AlarmItemOut], evidence: list[Evidence]) -> AlarmOut:
    snapshots = [e for e in evidence if e.kind == EvidenceKind.SNAPSHOT.value and e.path is not None]
    problems = [e.problem for e in evidence if e.problem]
    return AlarmOut(
        id=alarm.id,
        gate_id=alarm.gate_id,
        created_at=alarm.created_at,
        decided_locally=alarm.decided_locally,
        status=alarm.status,
        acknowledged_by=alarm.acknowledged_by,
        acknowledged_at=alarm.acknowledged_at,
        outcome=alarm.outcome,
        note=alarm.note,
        items=items,
        snapshot_url=evidence_url(snapshots[0].id) if snapshots else None,
        evidence_problem="; ".join(problems) if problems else None,
        evidence=[_evidence(e) for e in evidence],
    )


def _evidence(row: Evidence) -> EvidenceOut:
    return EvidenceOut(
        id=row.id,
        camera_id=row.camera_id,
        kind=row.kind,
        url=evidence_url(row.id) if row.path is not None else None,
        content_type=row.content_type,
        captured_at=row.captured_at,
        problem=row.problem,
    )
