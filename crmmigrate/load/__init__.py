"""Load: golden records → the new CRM, upserted through the crosswalk.

Each golden record's CRM id is the id most of its members already have in the crosswalk, or
(new to the CRM) its cluster id. Rows are compared with what the CRM holds first, so a second
run over the same data creates nothing and updates nothing. A CRM id that no crosswalk row
points to any more (its records now belong to a cluster that kept another id) is recorded as
superseded in ``migration_superseded`` together with the crosswalk change, and removed once
every entity is loaded, its children re-pointed to the row that superseded it: a re-run never
leaves a CRM row that nothing maps to. Writes
``load/outcomes.parquet`` (every record's outcome), ``load/errors.parquet`` and
``load/target_counts.parquet``.

An empty target is given the CRM schema (its Alembic head) first; a CRM whose schema is at
another revision is refused (``crmmigrate db upgrade`` is the step that changes it).
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import sqlalchemy as sa

from crmmigrate.crm.models import ENTITIES, LOAD_ORDER, Base, Crosswalk, CrmUser, Superseded, entity_fields
from crmmigrate.crm.dbio import (batches, comparable, count_rows, enforce_foreign_keys, fetch_existing, fetch_rows,
                                 insert_for, plain, retire_rows, upsert)
from crmmigrate.crm.schema import ensure_schema, head
from crmmigrate.rundir import RunDir, StageResult, read_table, stack, write_table
from crmmigrate.schemas import LOAD_ERRORS, OUTCOMES, TARGET_COUNTS, link_fields
from crmmigrate.spec.load import Project
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.target import Target, upgrade_command

__all__ = ["run_load"]

USER_NAMESPACE = uuid.UUID("0b6f7c1e-51a4-4b1d-a2f5-8c0f3d9e6a21")


def _crosswalk(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as con:
        return pd.read_sql(sa.select(Crosswalk.__table__), con)


def _owner_ids(engine: sa.Engine, names: pd.Series) -> dict[str, str]:
    ids = {n: str(uuid.uuid5(USER_NAMESPACE, n)) for n in names.dropna().unique()}
    upsert(engine, CrmUser.__table__, [{"id": i, "name": n} for n, i in ids.items()], do_nothing=True)
    return ids


def retire_superseded(engine: sa.Engine, run_id: str) -> pd.DataFrame:
    """Remove every superseded CRM row that is still there and that no crosswalk row points
    to, after re-pointing the rows that reference it to its successor. Children first, one
    transaction per entity (per row when one fails); a row the target will not let go is a load
    error (and reconcile's read-back then names it), not a crash. Returns the errors (LOAD_ERRORS columns)."""
    tombs, xwalk = Superseded.__table__, Crosswalk.__table__
    errors = []
    for entity in reversed(LOAD_ORDER):
        table = ENTITIES[entity].__table__
        pending = (sa.select(tombs.c.crm_id, tombs.c.superseded_by)
                   .where(tombs.c.entity == entity, tombs.c.removed_run_id.is_(None), tombs.c.crm_id.in_(sa.select(table.c.id)),
                          ~sa.exists().where(xwalk.c.entity == entity, xwalk.c.crm_id == tombs.c.crm_id))
                   .order_by(tombs.c.crm_id))
        with engine.connect() as con:
            pairs = [tuple(r) for r in con.execute(pending)]
        if not pairs:
            continue
        try:
            _retire(engine, table, entity, pairs, run_id)
        except sa.exc.DBAPIError:
            # One row the target will not let go (a table crmmigrate does not know refers to it)
            # must not hold back the others: again, one row per transaction.
            for pair in pairs:
                try:
                    _retire(engine, table, entity, [pair], run_id)
                except sa.exc.DBAPIError as exc:
                    errors.append({"entity": entity, "cluster_id": "", "crm_id": pair[0],
                                   "message": f"superseded by {pair[1]} but could not be removed: "
                                              f"{type(exc.orig).__name__}: {exc.orig}"})
    return pd.DataFrame(errors, columns=LOAD_ERRORS.names)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """A CRM row as JSON: dates, times and decimals as their text."""
    return {k: v if v is None or isinstance(v, (str, int, float, bool)) else str(v) for k, v in values.items()}


def _retire(engine: sa.Engine, table: sa.Table, entity: str, pairs: list[tuple[str, str]], run_id: str) -> None:
    """One transaction: keep the rows' last values, re-point their children, remove them, record it."""
    tombs = Superseded.__table__
    pending = tombs.c.removed_run_id.is_(None)
    with engine.begin() as con:
        kept = {old: _jsonable(values) for old, values in fetch_rows(con, table, [p[0] for p in pairs]).items()}
        retire_rows(con, table, pairs, Base.metadata)
        for old, _ in pairs:
            con.execute(tombs.update().where(tombs.c.entity == entity, tombs.c.crm_id == old, pending)
                        .values(removed_run_id=run_id, removed_values=kept.get(old)))


class EntityLoad:
    """Loads one entity's golden records and works out every member record's outcome."""

    def __init__(self, engine: sa.Engine, entity: str, golden: pd.DataFrame, members: pd.DataFrame,
                 crosswalk: pd.DataFrame, parent_ids: dict[str, dict[str, str]]):
        self.engine, self.entity, self.golden, self.members = engine, entity, golden, members
        self.table = ENTITIES[entity].__table__
        known = crosswalk[crosswalk["entity"] == entity].set_index(["source", "source_key"])["crm_id"]
        index = pd.MultiIndex.from_frame(members[["_source", "_source_key"]])
        self.members = members.assign(_known=known.reindex(index).to_numpy())
        self.golden = golden.assign(_crm_id=golden["cluster_id"].map(self._claim_ids(golden)))
        self.parent_ids = parent_ids
        self.superseded: dict[str, str] = {}  # CRM id this load left without crosswalk rows → its successor

    def _claim_ids(self, golden: pd.DataFrame) -> dict[str, str]:
        """Cluster id → CRM id. A CRM id the crosswalk knows goes to the one cluster holding most of
        its records, and a cluster keeps the id most of its records have: a cluster whose members
        carry several ids (records matched only after both were loaded) keeps one, and the others
        are superseded. A cluster that split off an earlier one gets a row of its own instead of
        overwriting its former partner's (two golden records must never share one CRM row, and a
        record split off must not take over a row whose records are elsewhere)."""
        known = self.members.dropna(subset=["_known"])
        votes = known.groupby(["cluster_id", "_known"]).size().rename("n").reset_index()
        votes = votes.sort_values(["n", "cluster_id", "_known"], ascending=[False, True, True])
        claimed: dict[str, str] = {}
        for cluster, crm_id in zip(votes["cluster_id"], votes["_known"]):
            if cluster not in claimed and crm_id not in claimed.values():
                claimed[cluster] = crm_id
        taken = set(claimed.values())
        for cluster in golden["cluster_id"]:
            if cluster not in claimed:
                fresh = cluster if cluster not in taken else str(uuid.uuid5(USER_NAMESPACE, f"split\x1f{cluster}"))
                claimed[cluster] = fresh
                taken.add(fresh)
        return claimed

    def rows(self) -> list[dict[str, Any]]:
        fields = list(entity_fields(self.entity))
        frame = self.golden
        out = pd.DataFrame({"id": frame["_crm_id"]})
        for name in fields:
            out[name] = frame[name]
        for parent in link_fields(self.entity):
            out[f"{parent}_id"] = frame[f"_link_{parent}"].map(self.parent_ids.get(parent, {}))
        if "owner_id" in self.table.columns:
            out["owner_id"] = frame["owner_name"].map(_owner_ids(self.engine, frame["owner_name"]))
        out["last_modified_at"] = frame["_last_modified"]
        return [{k: plain(v) for k, v in row.items()} for row in out.to_dict("records")]

    def load(self, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
        rows = self.rows()
        existing = fetch_existing(self.engine, self.table, [r["id"] for r in rows])
        status: dict[str, str] = {}
        changed = []
        for row in rows:
            old = existing.get(row["id"])
            if old is None:
                status[row["id"]] = "created"
            elif any(comparable(old.get(k)) != comparable(v) for k, v in row.items()):
                status[row["id"]] = "updated"
            else:
                status[row["id"]] = "unchanged"
                continue
            changed.append(row)
        refused = dict((row["id"], msg) for row, msg in upsert(self.engine, self.table, changed))
        errors = pd.DataFrame({"entity": self.entity, "crm_id": list(refused), "message": list(refused.values()),
                               "cluster_id": self.golden.set_index("_crm_id").loc[list(refused), "cluster_id"]
                               if refused else []})
        outcomes = self._outcomes(status, refused)
        ok = outcomes[outcomes["outcome"] != "rejected"]
        self.superseded = self._write_crosswalk(ok, run_id)
        outcomes = self._explain_moves(outcomes, self.superseded)
        tally = {k: sum(1 for i, s in status.items() if s == k and i not in refused)
                 for k in ("created", "updated", "unchanged")}
        return outcomes, errors, tally

    def _moved(self, outcomes: pd.DataFrame) -> pd.DataFrame:
        """Loaded records the crosswalk knew under another CRM id: (_known, crm_id) per record."""
        known = self.members.set_index(["_source", "_source_key"])["_known"]
        index = pd.MultiIndex.from_frame(outcomes[["_source", "_source_key"]])
        was = pd.Series(known.reindex(index).to_numpy(), index=outcomes.index)
        moved = outcomes["crm_id"].notna() & was.notna() & (was != outcomes["crm_id"])
        return pd.DataFrame({"_known": was[moved], "crm_id": outcomes.loc[moved, "crm_id"]})

    def _explain_moves(self, outcomes: pd.DataFrame, superseded: dict[str, str]) -> pd.DataFrame:
        """A record whose CRM id changed says so in its ledger message (never a silent re-point)."""
        moved = self._moved(outcomes)
        if moved.empty:
            return outcomes
        outcomes = outcomes.copy()
        notes = [f"was CRM {self.entity} {old}, now {new}" + (
                 f"; {old} is superseded by {new} and removed from the CRM" if superseded.get(old) == new else "")
                 for old, new in zip(moved["_known"], moved["crm_id"])]
        outcomes.loc[moved.index, "message"] = notes
        return outcomes

    def _outcomes(self, status: dict[str, str], refused: dict[str, str]) -> pd.DataFrame:
        g = self.golden.set_index("cluster_id")
        m = self.members.copy()
        m["crm_id"] = m["cluster_id"].map(g["_crm_id"])
        is_anchor = (m["_source"] == m["cluster_id"].map(g["_anchor_source"])) & (
            m["_source_key"] == m["cluster_id"].map(g["_anchor_key"]))
        # A record the crosswalk already knew reports what happened to its CRM row (anchor) or
        # nothing new (others); a record new to the crosswalk either created the row or was
        # folded into one: merged.
        row_status = m["crm_id"].map(status)
        known = m["_known"] == m["crm_id"]
        m["outcome"] = "merged"
        m.loc[known, "outcome"] = "unchanged"
        m.loc[known & is_anchor, "outcome"] = row_status[known & is_anchor]
        m.loc[~known & is_anchor & (row_status == "created"), "outcome"] = "created"
        failed = m["crm_id"].isin(list(refused))
        m.loc[failed, "outcome"] = "rejected"
        m["reason_code"] = None
        m["message"] = None
        m.loc[failed, "reason_code"] = str(ReasonCode.LOAD_ERROR)
        m.loc[failed, "message"] = m.loc[failed, "crm_id"].map(refused)
        m.loc[failed, "crm_id"] = None
        return m.assign(entity=self.entity)[[f.name for f in OUTCOMES]]

    def _write_crosswalk(self, outcomes: pd.DataFrame, run_id: str) -> dict[str, str]:
        """Upsert the crosswalk and, in the same transaction, record every CRM id it no longer
        points to as superseded by the id most of its records moved to. Returns those ids."""
        rows = [{"entity": self.entity, "source": s, "source_key": k, "crm_id": c, "first_run_id": run_id,
                 "last_run_id": run_id} for s, k, c in zip(outcomes["_source"], outcomes["_source_key"], outcomes["crm_id"])]
        table, tombs = Crosswalk.__table__, Superseded.__table__
        moved = self._moved(outcomes)
        live = sorted(set(outcomes["crm_id"].dropna()))
        with self.engine.begin() as con:
            stmt = insert_for(con)(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["entity", "source", "source_key"],
                set_={"crm_id": stmt.excluded.crm_id, "last_run_id": stmt.excluded.last_run_id})
            for batch in batches(rows):
                con.execute(stmt, batch)
            # An id in use again is nobody's superseded id; a removal already done stays as history.
            for batch in batches(live):
                con.execute(tombs.delete().where(tombs.c.entity == self.entity, tombs.c.removed_run_id.is_(None),
                                                 tombs.c.crm_id.in_(batch)))
            still: set[str] = set()
            for batch in batches(sorted(set(moved["_known"]))):
                still |= {r[0] for r in con.execute(sa.select(table.c.crm_id).distinct().where(
                    table.c.entity == self.entity, table.c.crm_id.in_(batch)))}
            superseded = {}
            for old, group in moved[~moved["_known"].isin(still)].groupby("_known"):
                share = group["crm_id"].value_counts()
                superseded[old] = sorted(share[share == share.max()].index)[0]
            for old, new in superseded.items():
                con.execute(tombs.update().where(tombs.c.entity == self.entity, tombs.c.superseded_by == old)
                            .values(superseded_by=new))
            if superseded:  # at most one pending entry per id (a killed run may have left one)
                con.execute(tombs.delete().where(tombs.c.entity == self.entity, tombs.c.removed_run_id.is_(None),
                                                 tombs.c.crm_id.in_(list(superseded))))
                stmt = insert_for(con)(tombs)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["entity", "crm_id", "run_id"],
                    set_={"superseded_by": stmt.excluded.superseded_by, "run_id": stmt.excluded.run_id,
                          "removed_run_id": None})
                con.execute(stmt, [{"entity": self.entity, "crm_id": old, "superseded_by": new, "run_id": run_id,
                                    "removed_run_id": None} for old, new in superseded.items()])
        return superseded

    def id_map(self, outcomes: pd.DataFrame) -> dict[str, str]:
        """Cluster id → CRM id, for the rows that are in the CRM now."""
        loaded = outcomes.dropna(subset=["crm_id"]).drop_duplicates("cluster_id")
        return dict(zip(loaded["cluster_id"], loaded["crm_id"]))


def run_load(run: RunDir, project: Project, target: Target) -> StageResult:
    merge_dir = run.require("merge")
    clusters = read_table(run.require("match") / "clusters.parquet")
    engine = target.engine()
    enforce_foreign_keys(engine)
    try:
        ensure_schema(engine, target.display, upgrade_command(project.root))
        with run.stage("load") as (out, result):
            crosswalk = _crosswalk(engine)
            deferred = read_table(merge_dir / "deferred.parquet")
            parent_ids: dict[str, dict[str, str]] = {}
            all_outcomes, all_errors, counts = [], [], []
            for entity in LOAD_ORDER:
                golden = read_table(merge_dir / f"{entity}.parquet")
                members = clusters[(clusters["entity"] == entity) & clusters["cluster_id"].isin(golden["cluster_id"])]
                # A record deferred by merge has its own ledger row; it is not part of the loaded golden record.
                waiting = deferred[deferred["entity"] == entity].set_index(["_source", "_source_key"]).index
                members = members[~members.set_index(["_source", "_source_key"]).index.isin(waiting)]
                before = count_rows(engine, ENTITIES[entity].__table__)
                loader = EntityLoad(engine, entity, golden, members, crosswalk, parent_ids)
                outcomes, errors, tally = loader.load(run.run_id)
                parent_ids[entity] = loader.id_map(outcomes)
                all_outcomes.append(outcomes)
                all_errors.append(errors)
                counts.append({"entity": entity, "before": before, **tally})
                result.counts[entity] = {**tally, "superseded": len(loader.superseded), "errors": len(errors)}
            # Only now: a superseded parent's children have just been re-pointed by their own load.
            all_errors.append(retire_superseded(engine, run.run_id))
            for row in counts:
                row["after"] = count_rows(engine, ENTITIES[row["entity"]].__table__)
            write_table(out / "outcomes.parquet", stack(all_outcomes, OUTCOMES.names), OUTCOMES)
            write_table(out / "errors.parquet", stack(all_errors, LOAD_ERRORS.names), LOAD_ERRORS)
            write_table(out / "target_counts.parquet", pd.DataFrame(counts), TARGET_COUNTS)
            result.counts["target"] = target.display
            result.counts["schema_revision"] = head()
    finally:
        engine.dispose()
    return result
