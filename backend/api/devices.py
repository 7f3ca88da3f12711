"""Devices as the backend last heard of them, for technicians."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import Staff, context, db_session, require_role
from backend.context import BackendContext
from backend.db.models import Device, StaffRole
from backend.schemas import DeviceOut

router = APIRouter(prefix="/api/devices", tags=["devices"])


@router.get("", response_model=list[DeviceOut])
def list_devices(
    _: Staff = Depends(require_role(StaffRole.TECHNICIAN)),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> list[DeviceOut]:
    """Every configured device (even one never heard from) and every device that spoke on the broker."""
    site = ctx.config.site_config
    configured = {
        **{gate.id: ("gate", gate.name) for gate in site.gates},
        **{reader.id: ("reader", reader.name) for reader in site.readers},
        **{camera.id: ("camera", camera.name) for camera in site.cameras},
        **{kiosk.id: ("kiosk", kiosk.name) for kiosk in site.kiosks},
    }
    seen = {row.id: row for row in session.scalars(select(Device))}
    devices = []
    for device_id in sorted(configured.keys() | seen.keys()):
        row = seen.get(device_id)
        kind, name = configured.get(device_id, (row.kind if row else "unknown", ""))
        devices.append(DeviceOut(
            id=device_id,
            kind=row.kind if row is not None else kind,
            name=name,
            configured=device_id in configured,
            online=row.online if row is not None else None,
            last_seen=row.last_seen if row is not None else None,
            state=row.state if row is not None else None,
        ))
    return devices
