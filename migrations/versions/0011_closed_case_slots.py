"""Cases: a closed case holds no open slot.

Before the case-closing race was fixed, a detection pass could give a member's slot to a case a
handler had just closed; from then on, that member's new evidence went into the closed case and
no new case opened. This clears any such slot, so detection opens a new case when one is due.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE case_entities SET open_slot = NULL WHERE open_slot IS NOT NULL"
        " AND case_id IN (SELECT id FROM cases WHERE status = 'closed')"
    )


def downgrade() -> None:
    """Nothing to undo: no closed case needs a slot."""
