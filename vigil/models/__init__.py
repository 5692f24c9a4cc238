"""Every table of Vigil's database, in the order data flows: register, then store, then the rest."""

from __future__ import annotations

from vigil.models.alerts import Alert, AlertMention, OutboxMessage, OutboxStatus, RoutedMention
from vigil.models.base import Base, storable_ids, utcnow
from vigil.models.cases import Case, CaseEntity, CaseEvent, CaseMention, CaseReason, CaseStatus, Severity
from vigil.models.collector import SourceState
from vigil.models.ops import OperatorEvent
from vigil.models.register import Doctor, Practice, Recipient, Scope, Tenant, TenantKind
from vigil.models.store import Classification, ErasedPost, Mention, MentionEntity

__all__ = [
    "Alert",
    "AlertMention",
    "Base",
    "Case",
    "CaseEntity",
    "CaseEvent",
    "CaseMention",
    "CaseReason",
    "CaseStatus",
    "Classification",
    "Doctor",
    "ErasedPost",
    "Mention",
    "MentionEntity",
    "OperatorEvent",
    "OutboxMessage",
    "OutboxStatus",
    "Practice",
    "Recipient",
    "RoutedMention",
    "Scope",
    "Severity",
    "SourceState",
    "Tenant",
    "TenantKind",
    "storable_ids",
    "utcnow",
]
