"""SQLAlchemy 2.x typed models of the new CRM.

Column ``info`` says how a column is fed: ``field`` columns are canonical fields a mapping
fills; ``link`` columns are foreign keys resolved from a mapping's declared links (through
the match clusters and the crosswalk); ``lookup`` columns are resolved at load by value.
Ids are UUID strings derived from the golden record's anchor, so they are portable between
SQLite and PostgreSQL and stable across runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine


class Money(TypeDecorator[Decimal]):
    """NUMERIC on servers; exact decimal text on SQLite, which has no decimal type and would
    otherwise round money through a float."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int):
        super().__init__(precision, scale, asdecimal=True)
        self.precision, self.scale = precision, scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[object]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> object:
        return str(value) if value is not None and dialect.name == "sqlite" else value

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    @property
    def python_type(self) -> type:
        return Decimal

F = {"field": True}


def link(entity: str) -> dict[str, str]:
    return {"link": entity}


class Base(DeclarativeBase):
    pass


class CrmUser(Base):
    """A rep that legacy systems assign customers to (created from owner names)."""

    __tablename__ = "crm_user"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Account(Base):
    __tablename__ = "account"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), info=F)
    website: Mapped[str | None] = mapped_column(String(200), info=F)
    tax_id: Mapped[str | None] = mapped_column(String(40), info=F)  # VAT or company registration number
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Contact(Base):
    __tablename__ = "contact"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("account.id"), index=True, info=link("account"))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("crm_user.id"), index=True, info={"lookup": "owner_name"})
    first_name: Mapped[str | None] = mapped_column(String(200), info=F)
    middle_name: Mapped[str | None] = mapped_column(String(200), info=F)
    last_name: Mapped[str] = mapped_column(String(200), info=F)
    birth_date: Mapped[dt.date | None] = mapped_column(Date, info=F)
    email: Mapped[str | None] = mapped_column(String(320), info=F)
    phone: Mapped[str | None] = mapped_column(String(32), info=F)
    mobile: Mapped[str | None] = mapped_column(String(32), info=F)
    tax_id: Mapped[str | None] = mapped_column(String(40), info=F)
    owner_name: Mapped[str | None] = mapped_column(String(200), info=F)
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Address(Base):
    __tablename__ = "address"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contact.id"), index=True, info=link("contact"))
    kind: Mapped[str] = mapped_column(String(20), info=F)
    street: Mapped[str | None] = mapped_column(String(300), info=F)
    city: Mapped[str | None] = mapped_column(String(200), info=F)
    postcode: Mapped[str | None] = mapped_column(String(20), info=F)
    region: Mapped[str | None] = mapped_column(String(100), info=F)  # state, province or county
    country: Mapped[str | None] = mapped_column(String(2), info=F)  # ISO 3166-1 alpha-2
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Order(Base):
    __tablename__ = "sales_order"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contact.id"), index=True, info=link("contact"))
    order_number: Mapped[str] = mapped_column(String(40), info=F)
    ordered_on: Mapped[dt.date] = mapped_column(Date, info=F)
    total: Mapped[Decimal | None] = mapped_column(Money(14, 2), info=F)
    currency: Mapped[str | None] = mapped_column(String(3), info=F)
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OrderLine(Base):
    __tablename__ = "order_line"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("sales_order.id"), index=True, info=link("order"))
    line_no: Mapped[int] = mapped_column(Integer, info=F)
    sku: Mapped[str | None] = mapped_column(String(60), info=F)
    description: Mapped[str | None] = mapped_column(Text, info=F)
    quantity: Mapped[int] = mapped_column(Integer, info=F)
    unit_price: Mapped[Decimal] = mapped_column(Money(14, 2), info=F)
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Invoice(Base):
    __tablename__ = "invoice"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contact.id"), index=True, info=link("contact"))
    invoice_number: Mapped[str] = mapped_column(String(40), info=F)
    issued_on: Mapped[dt.date] = mapped_column(Date, info=F)
    amount: Mapped[Decimal] = mapped_column(Money(14, 2), info=F)
    tax_rate: Mapped[Decimal | None] = mapped_column(Money(5, 2), info=F)
    currency: Mapped[str] = mapped_column(String(3), info=F)
    status: Mapped[str] = mapped_column(String(20), info=F)
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Shipment(Base):
    __tablename__ = "shipment"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("sales_order.id"), index=True, info=link("order"))
    shipment_number: Mapped[str] = mapped_column(String(40), info=F)
    carrier: Mapped[str | None] = mapped_column(String(60), info=F)
    tracking_number: Mapped[str | None] = mapped_column(String(80), info=F)
    shipped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), info=F)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), info=F)
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SupportCase(Base):
    __tablename__ = "support_case"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contact.id"), index=True, info=link("contact"))
    case_number: Mapped[str] = mapped_column(String(40), info=F)
    subject: Mapped[str | None] = mapped_column(Text, info=F)
    status: Mapped[str] = mapped_column(String(20), info=F)
    priority: Mapped[str | None] = mapped_column(String(20), info=F)
    channel: Mapped[str | None] = mapped_column(String(20), info=F)
    opened_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), info=F)
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class MarketingConsent(Base):
    __tablename__ = "marketing_consent"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contact.id"), index=True, info=link("contact"))
    channel: Mapped[str] = mapped_column(String(20), info=F)
    opted_in: Mapped[bool] = mapped_column(Boolean, info=F)
    consented_on: Mapped[dt.date | None] = mapped_column(Date, info=F)
    last_modified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Crosswalk(Base):
    """Legacy key → CRM id. The upsert key of every load and the memory of past runs."""

    __tablename__ = "migration_crosswalk"
    entity: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(120), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    crm_id: Mapped[str] = mapped_column(String(36), index=True)
    first_run_id: Mapped[str] = mapped_column(String(64))
    last_run_id: Mapped[str] = mapped_column(String(64))


class Superseded(Base):
    """A CRM row the migration created and later found to be the same thing as another row.

    When a cluster's members carry several CRM ids (two records matched only after both were
    loaded), the cluster keeps the id most of them have, and every other id whose crosswalk rows
    have all moved away is recorded here in the same transaction as the crosswalk change, so no
    CRM row is ever left with neither a crosswalk row nor a record of what became of it. The
    load then re-points the row's children to ``superseded_by`` and removes it
    (``removed_run_id``, its last values in ``removed_values``); a run killed in between
    finishes the job on the next load. Anyone still holding the old id can look up its
    successor here.
    """

    __tablename__ = "migration_superseded"
    entity: Mapped[str] = mapped_column(String(40), primary_key=True)
    crm_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    superseded_by: Mapped[str] = mapped_column(String(36), index=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # history: an id may come back and go again
    removed_run_id: Mapped[str | None] = mapped_column(String(64))
    # The row as it was when removed (hand edits in the CRM included): removed, never lost.
    removed_values: Mapped[dict | None] = mapped_column(JSON)


class MigrationRun(Base):
    __tablename__ = "migration_run"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict] = mapped_column(JSON)


class LedgerEntry(Base):
    __tablename__ = "migration_ledger"
    # The read-back asks, per CRM row no crosswalk row points to, whether a run created it.
    __table_args__ = (Index("ix_migration_ledger_crm_id", "entity", "crm_id"),)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(120), primary_key=True)
    entity: Mapped[str] = mapped_column(String(40), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))
    crm_id: Mapped[str | None] = mapped_column(String(36))
    reason_code: Mapped[str | None] = mapped_column(String(40))


ENTITIES: dict[str, type[Base]] = {
    "account": Account,
    "contact": Contact,
    "address": Address,
    "order": Order,
    "order_line": OrderLine,
    "invoice": Invoice,
    "shipment": Shipment,
    "support_case": SupportCase,
    "marketing_consent": MarketingConsent,
}
# Parents before children, so foreign keys resolve within one load.
LOAD_ORDER: tuple[str, ...] = tuple(ENTITIES)


@dataclass(frozen=True)
class FieldDef:
    name: str
    python_type: type
    required: bool


def entity_fields(entity: str) -> dict[str, FieldDef]:
    """Canonical fields a mapping may fill for *entity*, in table order."""
    table = ENTITIES[entity].__table__
    return {
        c.name: FieldDef(c.name, c.type.python_type, not c.nullable)
        for c in table.columns
        if c.info.get("field")
    }


def entity_links(entity: str) -> dict[str, str]:
    """Parent entity → foreign-key column for *entity*."""
    table = ENTITIES[entity].__table__
    return {c.info["link"]: c.name for c in table.columns if "link" in c.info}
