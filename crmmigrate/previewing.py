"""Preview a mapping: its sources' first records, mapped in memory, in seconds.

``crmmigrate.preview("sales", project=".")`` and ``crmmigrate preview --mapping sales``
run the same code as the extract and map stages (``open_reader``, the extract stage's
lineage, ``map_frame``) on the first *n* records of each source, and write nothing: no run
folder, no CRM. What a consultant sees here is what a run would map or reject.

(The module is not called ``preview``: ``crmmigrate.preview`` is the function, and a
submodule of that name would replace it on the package the moment it was imported.)
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from crmmigrate.coverage import first_records, input_columns, used_columns
from crmmigrate.errors import MappingSpecError, SettingsError, SpecProblem
from crmmigrate.extract import lineage_of
from crmmigrate.extract.lineage import row_hashes
from crmmigrate.map.mapper import map_frame
from crmmigrate.schemas import LINEAGE_NAMES
from crmmigrate.spec.load import SETTINGS_FILE, Project, _parse, check_columns, load_mapping, load_project
from crmmigrate.spec.model import EntityMapping, MappingSpec, ProjectSpec
from crmmigrate.spec.yamlsource import KeyPath, load_yaml
from crmmigrate.transforms import suggest

PathLike = str | os.PathLike[str]


@dataclass
class EntityPreview:
    """One entity mapping applied to the sample of its source."""

    entity: str
    source: str  # source id, `system.table`
    mapped: pd.DataFrame
    rejects: pd.DataFrame
    skipped: pd.DataFrame
    # Values an optional field dropped from mapped records (schemas.MAP_NULLED), shown as a run records them.
    nulled: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def records(self) -> int:
        return len(self.mapped) + len(self.rejects) + len(self.skipped)


@dataclass
class Preview:
    """A mapping's first records per source, mapped: what a run would do with them."""

    system: str
    n: int
    read: dict[str, int] = field(default_factory=dict)  # source id → records read (readable or not)
    unreadable: dict[str, pd.DataFrame] = field(default_factory=dict)  # source id → extract rejects
    # source id → records repeating an earlier key of the sample: not mapped again, as in a run
    # (`_row_number`, `_source_key`, `first_row_number`, `identical`, `outcome`)
    repeats: dict[str, pd.DataFrame] = field(default_factory=dict)
    entities: list[EntityPreview] = field(default_factory=list)

    def __getitem__(self, entity: str) -> EntityPreview:
        """The first preview of *entity* (``preview["contact"]``)."""
        for ep in self.entities:
            if ep.entity == entity:
                return ep
        raise KeyError(f"mapping `{self.system}` maps no {entity!r}; it maps: "
                       f"{', '.join(dict.fromkeys(e.entity for e in self.entities))}")


def preview(mapping: MappingSpec | PathLike, n: int = 500, *, project: PathLike | None = None,
            entity: str | None = None) -> Preview:
    """Map the first *n* records of each source of *mapping*, in memory.

    Parameters
    ----------
    mapping
        A mapping file's path, a system name within *project*, or a ``MappingSpec``.
    n
        Records read from the start of each source.
    project
        The project folder, against which source paths resolve. Default: for a file, the
        nearest folder above it holding ``crmmigrate.yml``; otherwise the current folder.
    entity
        Only this entity (e.g. ``"contact"``); default: every entity of the mapping.

    Returns
    -------
    Preview
        Mapped rows, rejects with their reasons, and skipped rows, per entity mapping.

    Raises
    ------
    MappingSpecError
        The mapping is broken, or reads a column its source does not have.
    SourceError
        A source cannot be opened.
    """
    proj, spec, shown = _resolve(mapping, project)
    entries = [em for em in spec.entities if entity is None or em.entity == entity]
    if not entries:
        mapped = list(dict.fromkeys(em.entity for em in spec.entities))
        raise SettingsError(f"In mapping `{spec.system}`: no entity '{entity}'{suggest(str(entity), mapped)}")
    result = Preview(spec.system, n)
    frames = {t: _sample(proj, spec, t, n, shown, result) for t in dict.fromkeys(em.from_ for em in entries)}
    for em in entries:
        out = map_frame(frames[em.from_], em, spec)
        result.entities.append(EntityPreview(em.entity, spec.source_id(em.from_), out.mapped, out.rejects,
                                             out.skipped, out.nulled))
    return result


def _sample(project: Project, spec: MappingSpec, table: str, n: int, shown: str | None,
            result: Preview, spread: bool = False) -> pd.DataFrame:
    """The first *n* records of *table* (with *spread*, *n* spread over it) as the extract stage
    would store them; unreadable ones go to ``result.unreadable``."""
    source_id, source = spec.source_id(table), spec.sources[table]
    rows, rejects = [], []
    with first_records(project, spec, table, n, spread) as (reader, records):
        _check_columns(project, spec, table, reader.header, shown)
        for rec in records:
            outcome = lineage_of(rec, reader.header, source.key, source_id, spec.department)
            (rejects if "reason_code" in outcome else rows).append(outcome)
        header = reader.header
    result.read[source_id] = len(rows) + len(rejects)
    result.unreadable[source_id] = pd.DataFrame(rejects, columns=["_row_number", "reason_code", "message", "raw"])
    frame = pd.DataFrame(rows, columns=[*header, *LINEAGE_NAMES])
    frame["_row_hash"] = row_hashes([pa.array(frame[c], pa.string()) for c in header], len(frame)).to_numpy(
        zero_copy_only=False)
    repeated = frame["_source_key"].duplicated()
    firsts = frame[~repeated].set_index("_source_key")
    later = frame[repeated]
    first = firsts.loc[later["_source_key"]]
    parts = []
    for em in (em for em in spec.entities if em.from_ == table):  # as the extract judges them: per entity
        columns = em.read_columns()
        identical = (later[columns].fillna("\0").to_numpy() == first[columns].fillna("\0").to_numpy()).all(axis=1) \
            if columns else [True] * len(later)
        parts.append(pd.DataFrame({
            "_row_number": later["_row_number"], "_source_key": later["_source_key"], "entity": em.entity,
            "first_row_number": first["_row_number"].to_numpy(), "identical": identical,
            # As the ledger has it (reconcile.ledger.repeat_rows).
            "outcome": ["merged" if same or source.duplicate_keys == "keep_first" else "rejected: duplicate_key"
                        for same in identical]}))
    result.repeats[source_id] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return frame[~repeated]


def _check_columns(project: Project, spec: MappingSpec, table: str, header: list[str], shown: str | None) -> None:
    # With a file, the run's own check (file, line, key path, suggestion); an object has no lines.
    if shown is not None:
        one = Project(project.root, project.spec, {spec.system: spec}, {spec.system: shown})
        problems = check_columns(one, {spec.source_id(table): header})
    else:
        problems = [SpecProblem(f"mapping `{spec.system}`", None, f"sources.{table}",
                                f"column '{c}' is not in source '{spec.source_id(table)}'{suggest(c, header)}")
                    for c in sorted(used_columns(spec, table) - set(header))]
    if problems:
        raise MappingSpecError(problems)


def _resolve(mapping: MappingSpec | PathLike, project: PathLike | None) -> tuple[Project, MappingSpec, str | None]:
    """The project, the mapping, and the mapping's file as errors show it (None for an object)."""
    if isinstance(mapping, MappingSpec):
        return _settings_only(Path(project or ".").resolve()), mapping, None
    path = Path(mapping)
    if path.suffix in (".yml", ".yaml") or path.is_file():
        path = path.resolve()
        root = Path(project).resolve() if project is not None else _enclosing_project(path)
        shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        spec, doc = load_mapping(path, shown)
        if spec is None or doc.problems:
            raise MappingSpecError(doc.problems)
        return _settings_only(root), spec, shown
    loaded = load_project(project or ".")
    if str(mapping) not in loaded.mappings:
        raise SettingsError(f"In project {loaded.root}: no mapping for system '{mapping}'"
                            f"{suggest(str(mapping), sorted(loaded.mappings))}")
    return loaded, loaded.mappings[str(mapping)], loaded.files[str(mapping)]


def _enclosing_project(path: Path) -> Path:
    for folder in path.parents:
        if (folder / SETTINGS_FILE).exists():
            return folder
    return Path.cwd()


def _settings_only(root: Path) -> Project:
    """The project's settings without loading its other mappings (one broken file elsewhere
    should not stop a preview of this one)."""
    if not (root / SETTINGS_FILE).exists():
        return Project(root, ProjectSpec(spec_version=1, kind="project", name=root.name))
    doc = load_yaml(root / SETTINGS_FILE, SETTINGS_FILE)
    settings = _parse(doc, ProjectSpec)
    if settings is None:
        raise MappingSpecError(doc.problems)
    return Project(root, settings)


DEFAULT_MAP_SAMPLE = 1_000
WARN_SHARE = 0.5  # a field whose rules refuse more of its values than this is more likely a wrong rule than bad data


@dataclass(frozen=True)
class FieldRefusals:
    """What the rules of one field refuse of the non-empty values in a sample of its source."""

    source: str  # source id
    entity: str
    field: str  # `last_modified` for the source's change time
    where: KeyPath  # the field's place in the mapping file
    values: int  # non-empty values sampled
    refused: int  # of them, refused by any rule
    by_rule: tuple[tuple[str, int], ...]  # (rule, values it refused), most first

    @property
    def share(self) -> float:
        return self.refused / self.values if self.values else 0.0


@dataclass
class MappingRefusals:
    system: str
    file: str
    sampled: dict[str, int]  # source id → records mapped
    fields: list[FieldRefusals]

    def warnings(self, root: Path) -> list[SpecProblem]:
        """The fields whose rules refuse more than WARN_SHARE of the sampled values, located."""
        doc = load_yaml(root / self.file, self.file)
        return [doc.problem(f.where, (
            f"{_percent(f.share)} of the {f.values:,} non-empty values sampled from '{f.source}' are refused "
            f"({_rules(f)}): is the rule right for this data? (`crmmigrate preview` shows the rejects)"))
            for f in self.fields if f.share > WARN_SHARE]


def sample_refusals(project: Project, n: int = DEFAULT_MAP_SAMPLE) -> list[MappingRefusals]:
    """Map *n* records spread evenly over each source through ``map_frame`` (what a run does)
    and count, per field and rule, the non-empty values refused. A blank required value is a
    gap in the data, not a rule refusing it, so it is not counted."""
    found = []
    for system, spec in project.mappings.items():
        shown = project.files.get(system, system)
        result = MappingRefusals(system, shown, {}, [])
        for table in spec.sources:
            frame = _sample(project, spec, table, n, shown, Preview(system, n), spread=True)
            result.sampled[spec.source_id(table)] = len(frame)
            entries = [(i, em) for i, em in enumerate(spec.entities) if em.from_ == table]
            # The change time is read for every entity alike: counted once, through an entity that
            # skips no record if there is one (a skipped record's failures are not kept).
            _, timed = next(((i, em) for i, em in entries if not em.when_present), entries[0])
            for i, em in entries:
                result.fields += _entity_refusals(frame, em, spec, ("entities", i), em is timed)
        found.append(result)
    return found


def _entity_refusals(frame: pd.DataFrame, em: EntityMapping, spec: MappingSpec, where: KeyPath,
                     timed: bool) -> list[FieldRefusals]:
    out = map_frame(frame, em, spec)
    # (row, field, rule) of every refused non-empty value, lenient fields' dropped values included
    refused = {(row, f["field"], f["rule"]) for row, failures in zip(out.rejects["_row_number"], out.rejects["failures"])
               for f in failures if _filled(f["value"])}
    refused |= {(row, name, rule) for row, name, rule, value in
                zip(out.nulled["_row_number"], out.nulled["field"], out.nulled["rule"], out.nulled["value"])
                if _filled(value)}
    considered = frame[~frame.index.isin(out.skipped.index)]  # (skipped rows keep their labels)
    inputs = [(name, input_columns(fs), (*where, "fields", name)) for name, fs in em.fields.items()]
    lm = spec.sources[em.from_].last_modified
    if timed and lm is not None:
        inputs.append(("_last_modified", (lm.column,), ("sources", em.from_, "last_modified")))
    fields = []
    for name, columns, place in inputs:
        if not columns:
            continue  # a constant: nothing read, nothing refused
        filled = pd.concat([considered[c].map(_filled) for c in columns], axis=1).any(axis=1)
        mine = [(row, rule) for row, f, rule in refused if f == name]
        rules: Counter[str] = Counter(rule for _, rule in mine)
        fields.append(FieldRefusals(spec.source_id(em.from_), "" if name == "_last_modified" else em.entity,
                                    name.lstrip("_"), place,
                                    int(filled.sum()), len({row for row, _ in mine}), tuple(rules.most_common())))
    return fields


def _filled(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _rules(f: FieldRefusals) -> str:
    return ", ".join(f"{rule} {_percent(n / f.values)}" for rule, n in f.by_rule)


def _percent(share: float) -> str:
    """A share rounded, but never to 0% or 100% when it is neither: 1 value of 500 is not none."""
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{share:.0%}"


def format_refusals(report: list[MappingRefusals], n: int) -> list[str]:
    """The lines `crmmigrate validate` prints: per field, the share of values each rule refuses."""
    lines = [f"Rules on up to {n:,} records spread evenly over each source (share of non-empty values refused; "
             "fields refusing none not listed):"]
    for mr in report:
        lines.append(f"  {mr.system} ({mr.file})")
        for source_id, sampled in mr.sampled.items():
            mine = [f for f in mr.fields if f.source == source_id and f.refused]
            lines.append(f"    {source_id}: {sampled:,} records sampled{'' if mine else ', no value refused'}")
            lines += [f"      {'.'.join(filter(None, (f.entity, f.field)))}: {_percent(f.share)} of {f.values:,} values "
                      f"refused: {_rules(f)}" for f in mine]
    return lines


def format_preview(result: Preview, show: int = 10) -> list[str]:
    """The lines `crmmigrate preview` prints: counts, the first mapped rows, and the rejects."""
    lines = [f"Preview of mapping `{result.system}`: the first {result.n:,} records of each source, nothing written."]
    for source_id, count in result.read.items():
        bad = result.unreadable[source_id]
        lines.append(f"{source_id}: {count:,} records read, {len(bad):,} unreadable")
        lines += [f"  row {r['_row_number']}: {r['reason_code']}: {r['message']}" for r in bad.head(show).to_dict("records")]
        repeats = result.repeats.get(source_id, pd.DataFrame())
        if len(repeats):
            records = repeats["_row_number"].nunique()
            lines.append(f"{source_id}: {records:,} record(s) repeat an earlier key (mapped once, through the first)")
            lines += [f"  row {r['_row_number']} (key {r['_source_key']}) repeats row {r['first_row_number']} "
                      f"{'with the same' if r['identical'] else 'with different'} {r['entity']} values: {r['outcome']}"
                      for r in repeats.head(show).to_dict("records")]
    for ep in result.entities:
        lines += ["", f"{ep.entity} from {ep.source}: {len(ep.mapped):,} mapped, {len(ep.rejects):,} rejected, "
                      f"{len(ep.skipped):,} skipped"]
        fields = [c for c in ep.mapped.columns if not c.startswith("_")]
        if len(ep.mapped):
            table = ep.mapped[["_source_key", *fields]].head(show).rename(columns={"_source_key": "key"})
            lines += ["  " + line for line in table.to_string(index=False, max_colwidth=40).splitlines()]
        for r in ep.rejects.head(show).to_dict("records"):
            lines.append(f"  rejected row {r['_row_number']} (key {r['_source_key']}): {r['reason_code']}: {r['message']}")
        if len(ep.rejects) > show:
            lines.append(f"  … and {len(ep.rejects) - show:,} more rejected")
        for r in ep.nulled.head(show).to_dict("records"):
            lines.append(f"  value dropped, row {r['_row_number']} (key {r['_source_key']}) kept: {r['reason_code']}: "
                         f"{r['field']}: {r['message']}")
        if len(ep.nulled) > show:
            lines.append(f"  … and {len(ep.nulled) - show:,} more values dropped")
    return lines
