"""How much of each source a mapping covers, measured against the real data.

`crmmigrate validate` prints this after its checks pass. Gaps here are information, not
errors: an unused column may be deliberate (list it under the source's ``ignore_columns``),
and a picklist value the map misses would be rejected as ``unmapped_value`` by a run, so it
is better seen now. Nothing here writes anything; sources are streamed and the scan is capped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

import pandas as pd

from crmmigrate.crm.models import entity_fields
from crmmigrate.errors import SpecProblem
from crmmigrate.extract.readers import EmptyFileReader, RawRecord, Reader, open_reader
from crmmigrate.spec.load import Project, named_columns
from crmmigrate.spec.model import EntityMapping, FieldSpec, MappingSpec
from crmmigrate.spec.yamlsource import load_yaml
from crmmigrate.transforms import get_transform

DEFAULT_SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class EntityCoverage:
    """Which canonical fields of one entity a mapping entry fills."""

    entity: str
    table: str
    fields: tuple[str, ...]  # every field the entity has, in table order
    mapped: tuple[str, ...]
    required: tuple[str, ...]

    @property
    def required_mapped(self) -> tuple[str, ...]:
        return tuple(f for f in self.required if f in self.mapped)

    @property
    def unmapped(self) -> tuple[str, ...]:
        return tuple(f for f in self.fields if f not in self.mapped)

    @property
    def required_percent(self) -> float:
        return 100.0 * len(self.required_mapped) / len(self.required) if self.required else 100.0


@dataclass(frozen=True)
class PicklistGap:
    """Values found in the data (after the field's transforms) that its ``map:`` does not cover."""

    entity: str
    field: str
    columns: tuple[str, ...]
    values: tuple[tuple[str, int], ...]  # (value as the map would see it, records), most frequent first


@dataclass(frozen=True)
class SourceCoverage:
    """How many of one source's columns the mapping reads or deliberately ignores."""

    source: str  # source id, `system.table`
    table: str
    header: tuple[str, ...]
    used: tuple[str, ...]
    ignored: tuple[str, ...]
    records_scanned: int
    picklists: tuple[PicklistGap, ...]
    empty: bool = False  # a file of no bytes: no header of its own, 0 records


    @property
    def unused(self) -> tuple[str, ...]:
        return tuple(c for c in self.header if c not in self.used and c not in self.ignored)

    @property
    def percent(self) -> float:
        return 100.0 * (len(self.header) - len(self.unused)) / len(self.header) if self.header else 100.0


@dataclass(frozen=True)
class MappingCoverage:
    system: str
    file: str
    sources: tuple[SourceCoverage, ...]
    entities: tuple[EntityCoverage, ...]


def used_columns(mapping: MappingSpec, table: str) -> set[str]:
    """Every column of *table* that a key, field, link, ``last_modified`` or ``when_present`` reads."""
    source = mapping.sources[table]
    used = set(source.key) if source.key != "row_number" else set()
    if source.last_modified is not None:
        used.add(source.last_modified.column)
    for em in mapping.entities:
        if em.from_ != table:
            continue
        for fs in em.fields.values():
            used |= set(input_columns(fs))
        used |= set(em.when_present) | {link.column for link in em.links.values() if link.column}
    return used


def input_columns(fs: FieldSpec) -> tuple[str, ...]:
    return (fs.column,) if fs.column is not None else tuple(fs.columns or ())


def entity_coverage(em: EntityMapping) -> EntityCoverage:
    known = entity_fields(em.entity)
    return EntityCoverage(em.entity, em.from_, tuple(known), tuple(f for f in em.fields if f in known),
                          tuple(n for n, f in known.items() if f.required))


@contextmanager
def first_records(project: Project, mapping: MappingSpec, table: str, n: int,
                  spread: bool = False) -> Iterator[tuple[Reader, Iterator[RawRecord]]]:
    """The reader of one source and its first *n* physical records, or with *spread* *n* records
    evenly spaced over the whole source (the same ones every time); closed on exit even when
    the records were not all read (a SQL cursor or workbook would otherwise stay open)."""
    spec = mapping.sources[table]
    path = None if spec.path is None else project.path(spec.path)  # None: a database behind `url_env`
    reader = open_reader(path, spec, min(n, project.spec.chunk_rows) or 1, named_columns(mapping, table))
    records = reader.records()
    try:
        yield reader, (_evenly(records, reader.count_records(), n) if spread else islice(records, n))
    finally:
        close = getattr(records, "close", None)  # a generator's `finally` releases its cursor or file
        if close is not None:
            close()
        reader.close()


def _evenly(records: Iterator[RawRecord], count: int, n: int) -> Iterator[RawRecord]:
    """*n* of *count* records, at evenly spaced positions from the first to the last: the end of an
    export (newer records, another clerk's habits) is sampled like its start."""
    if count <= n:
        yield from records
        return
    picked = {round(i * (count - 1) / (n - 1)) for i in range(n)} if n > 1 else {0}
    for position, record in enumerate(records):
        if position in picked:
            yield record
        if position >= count - 1:
            return


def _picklist_fields(mapping: MappingSpec, table: str) -> list[tuple[EntityMapping, str, FieldSpec]]:
    return [(em, name, fs) for em in mapping.entities if em.from_ == table
            for name, fs in em.fields.items() if fs.map is not None and input_columns(fs)]


def _as_mapped(values: pd.Series, fs: FieldSpec, mapping: MappingSpec) -> pd.Series:
    """*values* after the field's transforms, as the value map sees them; refused values become None."""
    context = {"default_region": mapping.default_region}
    for call in fs.transform:
        values, bad = get_transform(call.name)(values, call.args, context)
        values = values.astype(object).where(values.notna() & ~bad, None)
    return values


def picklist_gap(em: EntityMapping, name: str, fs: FieldSpec, counts: Counter[str], mapping: MappingSpec) -> PicklistGap:
    """The values in *counts* (input text → records) that the field's map does not cover."""
    distinct = pd.Series(list(counts), dtype=object)
    seen = _as_mapped(distinct, fs, mapping)
    missing: Counter[str] = Counter()
    for raw, value in zip(distinct, seen):
        if value is not None and value not in fs.map:  # type: ignore[operator]
            missing[value] += counts[raw]
    return PicklistGap(em.entity, name, input_columns(fs), tuple(missing.most_common()))


def _field_input(values: dict[str, str | None], fs: FieldSpec) -> str | None:
    # The same input the mapper builds: one column, or the non-empty ones joined with `sep`.
    if fs.column is not None:
        return values.get(fs.column)
    joined = fs.sep.join(v for c in fs.columns or () if (v := values.get(c)) is not None)
    return joined or None


def source_coverage(project: Project, mapping: MappingSpec, table: str,
                    sample_rows: int = DEFAULT_SAMPLE_ROWS) -> SourceCoverage:
    """Column use of one source, and its picklist gaps over at most *sample_rows* records."""
    fields = _picklist_fields(mapping, table)
    counts: list[Counter[str]] = [Counter() for _ in fields]
    scanned = 0
    with first_records(project, mapping, table, sample_rows if fields else 0) as (reader, records):
        header = tuple(reader.header)
        empty = isinstance(reader, EmptyFileReader)
        for rec in records:
            if rec.values is None:
                continue  # unreadable: extract rejects it; it has no values to check
            scanned += 1
            values = dict(zip(header, rec.values))
            for (_, _, fs), counter in zip(fields, counts):
                if (value := _field_input(values, fs)) is not None:
                    counter[value] += 1
    gaps = tuple(g for (em, name, fs), c in zip(fields, counts) if (g := picklist_gap(em, name, fs, c, mapping)).values)
    source = mapping.sources[table]
    return SourceCoverage(mapping.source_id(table), table, header, tuple(sorted(used_columns(mapping, table))),
                          tuple(source.ignore_columns), scanned, gaps, empty)


def mapping_coverage(project: Project, system: str, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> MappingCoverage:
    mapping = project.mappings[system]
    return MappingCoverage(system, project.files.get(system, system),
                           tuple(source_coverage(project, mapping, t, sample_rows) for t in mapping.sources),
                           tuple(entity_coverage(em) for em in mapping.entities))


def project_coverage(project: Project, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> list[MappingCoverage]:
    """Coverage of every mapping of *project*, in file order."""
    return [mapping_coverage(project, system, sample_rows) for system in project.mappings]


def empty_sources(project: Project) -> list[SpecProblem]:
    """Source files of no bytes, located at their `path:`: a run reads each as 0 records (an
    export that found nothing), which is worth a warning, not an error stopping the project."""
    found = []
    for mapping, table in project.sources():
        path = mapping.sources[table].path
        if path is not None and (file := project.path(path)).is_file() and file.stat().st_size == 0:
            shown = project.files.get(mapping.system, mapping.system)
            found.append(load_yaml(project.root / shown, shown).problem(
                ("sources", table, "path"),
                f"source '{mapping.source_id(table)}' is empty (0 bytes): a run reads it as 0 records"))
    return found


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def format_coverage(report: list[MappingCoverage], sample_rows: int) -> list[str]:
    """The lines `crmmigrate validate` prints."""
    lines = [f"Coverage (picklist values checked on the first {sample_rows:,} records of each source):"]
    for mc in report:
        lines.append(f"  {mc.system} ({mc.file})")
        for sc in mc.sources:
            if sc.empty:
                lines.append(f"    {sc.source}: empty file (0 bytes), no columns to cover")
                continue
            covered = len(sc.header) - len(sc.unused)
            unused = f"; unused: {', '.join(sc.unused)}" if sc.unused else ""
            lines.append(f"    {sc.source}: {covered}/{len(sc.header)} columns used or ignored ({sc.percent:.0f}%){unused}")
            for ec in (e for e in mc.entities if e.table == sc.table):
                rest = f"; not mapped: {', '.join(ec.unmapped)}" if ec.unmapped else ""
                lines.append(f"      {ec.entity}: required fields {len(ec.required_mapped)}/{len(ec.required)} "
                             f"({ec.required_percent:.0f}%), all fields {len(ec.mapped)}/{len(ec.fields)}{rest}")
            for gap in sc.picklists:
                shown = ", ".join(f"'{v}' ({_plural(n, 'record')})" for v, n in gap.values[:10])
                more = f" and {len(gap.values) - 10} more" if len(gap.values) > 10 else ""
                lines.append(f"      {gap.entity}.{gap.field} map: {_plural(len(gap.values), 'value')} in "
                             f"{', '.join(gap.columns)} not covered: {shown}{more}")
    return lines
