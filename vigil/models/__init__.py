"""Every table of Vigil's database, in the order data flows: register, then store, then the rest."""

from __future__ import annotations

from vigil.models.base import Base, utcnow
from vigil.models.collector import SourceState
from vigil.models.ops import OperatorEvent
from vigil.models.register import Doctor, Practice, Recipient, Scope, Tenant, TenantKind
from vigil.models.store import Classification, Mention, MentionEntity

__all__ = [
    "Base",
    "Classification",
    "Doctor",
    "Mention",
    "MentionEntity",
    "OperatorEvent",
    "Practice",
    "Recipient",
    "Scope",
    "SourceState",
    "Tenant",
    "TenantKind",
    "utcnow",
]
