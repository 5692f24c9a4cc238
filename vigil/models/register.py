"""The register: who and what Vigil watches, grouped under tenants, and who hears about it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.labels import LABELS
from vigil.models.base import Base, utcnow


class TenantKind(enum.StrEnum):
    PRACTICE = "practice"
    ORGANISATION = "organisation"


class Scope(enum.StrEnum):
    ORG = "org"
    PRACTICE = "practice"
    DOCTOR = "doctor"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Tenant(Base):
    """Whose data this is: a GP practice, or the defence organisation that sees all its members."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TenantKind] = mapped_column(_enum(TenantKind, "tenant_kind"))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    practices: Mapped[list[Practice]] = relationship(back_populates="tenant")


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), index=True)
    ods_code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    town: Mapped[str] = mapped_column(String(100), default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    handles: Mapped[list[str]] = mapped_column(default=list)
    website: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship(back_populates="practices")
    doctors: Mapped[list[Doctor]] = relationship(back_populates="practice")

    __table_args__ = (CheckConstraint("length(ods_code) = 6", name="ods_code_length"),)


class Doctor(Base):
    __tablename__ = "doctors"

    id: Mapped[int] = mapped_column(primary_key=True)
    gmc_number: Mapped[str] = mapped_column(String(7), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(default=list)
    handles: Mapped[list[str]] = mapped_column(default=list)
    specialty: Mapped[str] = mapped_column(String(100), default="")
    town: Mapped[str] = mapped_column(String(100), default="")
    practice_id: Mapped[int | None] = mapped_column(
        ForeignKey("practices.id", ondelete="SET NULL"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    practice: Mapped[Practice | None] = relationship(back_populates="doctors")

    __table_args__ = (CheckConstraint("length(gmc_number) = 7", name="gmc_number_length"),)


class Recipient(Base):
    """Someone who receives alerts and digests, scoped to what they may see."""

    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[Scope] = mapped_column(_enum(Scope, "recipient_scope"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    practice_id: Mapped[int | None] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    immediate_alerts: Mapped[bool] = mapped_column(default=True)
    digest: Mapped[bool] = mapped_column(default=True)
    categories: Mapped[list[str]] = mapped_column(default=lambda: list(LABELS))
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship()
    practice: Mapped[Practice | None] = relationship()
    doctor: Mapped[Doctor | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "(scope = 'org' AND practice_id IS NULL AND doctor_id IS NULL)"
            " OR (scope = 'practice' AND practice_id IS NOT NULL AND doctor_id IS NULL)"
            " OR (scope = 'doctor' AND doctor_id IS NOT NULL AND practice_id IS NULL)",
            name="scope_target",
        ),
    )

    @property
    def scope_text(self) -> str:
        """The scope as written in the register CSV: ``org``, ``practice:A12345``, ``doctor:1234567``."""
        if self.scope is Scope.PRACTICE and self.practice is not None:
            return f"practice:{self.practice.ods_code}"
        if self.scope is Scope.DOCTOR and self.doctor is not None:
            return f"doctor:{self.doctor.gmc_number}"
        return "org"
