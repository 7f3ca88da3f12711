"""The circulation rules table (standalone mode): read and replace it, admins only.

The body is a whole :class:`~backend.circulation.model.RuleSet` (rules per patron
category × item type, currency, hold pickup days); it is validated completely
(422 with the field named) and stored in one transaction, so a bad edit never
leaves half a table. Running checkouts see the new rules at once.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.api.circulation_common import desk, require_standalone
from backend.api.deps import Staff, audit, context
from backend.circulation.model import RuleSet
from backend.context import BackendContext

router = APIRouter(prefix="/api/circulation", tags=["rules"])


@router.get("/rules", response_model=RuleSet)
def get_rules(_: Staff = Depends(desk), ctx: BackendContext = Depends(context)) -> RuleSet:
    require_standalone(ctx)
    assert ctx.circulation.store is not None
    return ctx.circulation.store.rules()


@router.put("/rules", response_model=RuleSet)
def replace_rules(body: RuleSet, staff: Staff = Depends(desk), ctx: BackendContext = Depends(context)) -> RuleSet:
    require_standalone(ctx)
    assert ctx.circulation.store is not None
    ctx.circulation.store.save_rules(body)
    with ctx.sessions() as session:
        audit(session, ctx, staff.username, "replace_rules", f"{len(body.rules)} rule(s)")
        session.commit()
    return ctx.circulation.store.rules()
