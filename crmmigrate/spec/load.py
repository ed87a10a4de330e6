"""Load a project folder: its settings and every mapping file, checked all at once.

Problems from every file are collected into one ``MappingSpecError`` so a consultant fixes
them in one pass; each names the file, the 1-based line and the key path.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from crmmigrate.crm.models import entity_fields, entity_links
from crmmigrate.errors import MappingSpecError, SpecProblem
from crmmigrate.spec.model import (
    CsvSource, EntityMapping, FieldSpec, JsonSource, LastModified, LinkSpec, MappingSpec, MatchSpec,
    MatchTraining, ProjectSpec,
    SourceBase, Spec, SqlSource, XlsxSource,
)
from crmmigrate.spec.yamlsource import KeyPath, YamlDoc, format_path, load_yaml
# A module import, not names: `crmmigrate.transforms` imports `crmmigrate.spec.reasons`, which runs
# this package's __init__; importing names here would fail when transforms is imported first.
from crmmigrate import transforms as _transforms

if TYPE_CHECKING:
    import pandas as pd

SETTINGS_FILE = "crmmigrate.yml"
M = TypeVar("M", bound=BaseModel)


@dataclass
class Project:
    root: Path
    spec: ProjectSpec
    mappings: dict[str, MappingSpec] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # system → file as shown in errors
    # system → key paths refused by the schema and left out so that the rest could be checked; a
    # project with any is only good for finding more problems, never for a run
    refused: dict[str, list[KeyPath]] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        """A path from a spec, resolved against the project folder."""
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    @property
    def runs_dir(self) -> Path:
        return self.path(self.spec.runs)

    def department_rank(self, departments: "pd.Series") -> "pd.Series":
        """Survivorship priority of each department: its place in `priority:`, unlisted last."""
        order = {d: i for i, d in enumerate(self.spec.priority)}
        return departments.map(lambda d: order.get(d, len(order)))

    def sources(self) -> list[tuple[MappingSpec, str]]:
        """Every (mapping, table name) pair, in a stable order."""
        return [(m, t) for m in self.mappings.values() for t in m.sources]

    def readable_sources(self) -> list[tuple[MappingSpec, str]]:
        """The sources read the way their author meant: one with a refused value (a
        `delimiter: 5`), or an unknown key that looks like a reading option (`delimeter:`), would
        be read another way, and its header would make every column look missing. An unknown key
        like `last_modifed:` changes no reading: the columns are still checked in the same pass."""
        return [(m, t) for m, t in self.sources()
                if not any(r[:2] == ("sources", t) and _changes_reading(r) for r in self.refused.get(m.system, ()))]


# What every source declares without changing how its rows are read (spec.model.SourceBase).
_NOT_READING = set(SourceBase.model_fields) | {f.alias for f in SourceBase.model_fields.values() if f.alias}
_READING = {name for cls in (CsvSource, JsonSource, XlsxSource, SqlSource) for name in cls.model_fields} - _NOT_READING


def _changes_reading(refused: KeyPath) -> bool:
    """Whether a key refused in a source's declaration may change how the source is read."""
    if len(refused) != 3 or not isinstance(refused[2], str):
        return True  # a refused value inside a setting, or the declaration itself
    key = refused[2]
    if key in _NOT_READING:
        return False  # its value was refused; the rows are read the same
    if key in _READING:
        return True
    return bool(get_close_matches(key, sorted(_READING), n=1))  # an unknown key: a misspelled reading option?


def _parse(doc: YamlDoc, model: type[M]) -> M | None:
    if doc.problems or doc.data is None:
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
            doc.problems.append(doc.problem(loc, _message(err)))
        return None


def _parse_partial(doc: YamlDoc, model: type[M]) -> M | None:
    """Like ``_parse``, but a document whose refused keys can be left out (optional ones, at a
    dict key) is validated again without them, so that the checks needing a model (names,
    columns) find the rest of its problems in the same pass. The keys left out go to
    ``doc.refused``; None when the schema needs what was refused."""
    if doc.data is None:
        return None
    data = copy.deepcopy(doc.data)
    for attempt in range(_PRUNE_ROUNDS):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
        paths = []
        for err in errors:
            loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
            if attempt == 0:
                doc.problems.append(doc.problem(loc, _message(err)))
            # A required key cannot be left out, and a list item cannot without renumbering its
            # siblings, whose problems would then name the wrong item.
            if err["type"] == "missing" or not loc or isinstance(loc[-1], int):
                return None
            paths.append(loc)
        for path in paths:
            _drop(data, path)
            doc.refused.append(path)
    return None


_PRUNE_ROUNDS = 5


def _drop(data: Any, path: KeyPath) -> None:
    for part in path[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(data, dict):
        data.pop(path[-1], None)


def _related(key_path: str, refused: list[KeyPath]) -> bool:
    """Whether a problem at *key_path* is about a refused key, or about what holds one (a
    required field "not mapped" because its entry was refused)."""
    for path in map(format_path, refused):
        shorter, longer = sorted((key_path, path), key=len)
        if longer == shorter or (longer.startswith(shorter) and longer[len(shorter)] in ".["):
            return True
    return False


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the discriminator value / validator name in `loc`; they are not keys.
    return isinstance(part, str) and (part in ("csv", "sql", "json", "xlsx") or "[" in part or part.startswith("function-"))


def _keys(*models: type[BaseModel]) -> list[str]:
    return sorted({f.alias or name for model in models for name, f in model.model_fields.items()})


def _spec_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a spec file may hold where *loc* (an unknown key's place) is; every key of every
    spec model where the place is not one of a mapping's own."""
    where = tuple("*" if isinstance(p, int) else p for p in loc[:-1])
    if not where:
        return _keys(MappingSpec, ProjectSpec)
    if where[0] == "sources" and len(where) == 2:
        return _keys(CsvSource, JsonSource, XlsxSource, SqlSource)
    if where[0] == "sources" and where[2:] == ("last_modified",):
        return _keys(LastModified)
    if where[0] == "entities" and len(where) == 2:
        return _keys(EntityMapping)
    if where[0] == "entities" and len(where) == 4 and where[2] in ("fields", "links"):
        return _keys(FieldSpec if where[2] == "fields" else LinkSpec)
    if where[0] == "match" and len(where) in (2, 3):
        return _keys(MatchSpec if len(where) == 2 else MatchTraining)
    models, keys = [Spec], set()
    while models:
        model = models.pop()
        models += model.__subclasses__()
        keys.update(_keys(model))
    return sorted(keys)


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        close = get_close_matches(str(loc[-1]), _spec_keys(loc), n=1) if loc else []
        return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "literal_error":
        return f"{err['msg'].lower()} (got {err['input']!r})"
    return err["msg"].removeprefix("Value error, ")


def load_mapping(path: Path, display_name: str | None = None) -> tuple[MappingSpec | None, YamlDoc]:
    """Parse and check one mapping file; problems are left on the returned doc.

    The spec is returned as far as the schema takes it, to check the rest of the file: it is
    only fit to use when ``doc.problems`` is empty."""
    doc = load_yaml(path, display_name)
    spec = _parse_partial(doc, MappingSpec)
    if spec is not None:
        found = len(doc.problems)
        check_mapping(spec, doc)
        if doc.refused:
            doc.problems[found:] = [p for p in doc.problems[found:] if not _related(p.key_path, doc.refused)]
    return spec, doc


def check_mapping(spec: MappingSpec, doc: YamlDoc) -> None:
    """Checks a schema cannot express: names that must exist elsewhere."""
    context = {"default_region": spec.default_region}
    read = {em.from_ for em in spec.entities}
    for table in spec.sources:
        if table not in read:  # its records would be extracted and counted, then belong to no ledger row
            doc.problems.append(doc.problem(("sources", table), f"source '{table}' is not read by any entity "
                                                               "(`from:`); map it or remove it"))
    first: dict[tuple[str, str], int] = {}
    for i, em in enumerate(spec.entities):
        base: tuple[str | int, ...] = ("entities", i)
        if (earlier := first.setdefault((em.entity, em.from_), i)) != i:
            # One record, one outcome per entity: a second mapping would write the same outputs and
            # ledger keys, and one of the two would be lost.
            doc.problems.append(doc.problem((*base, "entity"), (
                f"'{em.entity}' is already mapped from '{em.from_}' (entities[{earlier}]); a source record "
                f"becomes at most one '{em.entity}': map its other fields in that entry")))
        if em.from_ not in spec.sources:
            doc.problems.append(doc.problem((*base, "from"),
                                            f"unknown source '{em.from_}'{_transforms.suggest(em.from_, sorted(spec.sources))}"))
        known = entity_fields(em.entity)
        for name, fs in em.fields.items():
            where = (*base, "fields", name)
            if name not in known:
                doc.problems.append(doc.problem(where, f"'{em.entity}' has no field '{name}'{_transforms.suggest(name, list(known))}"))
            elif fs.map and known[name].python_type is str and (
                    flags := [(k, str(v).lower()) for k, v in fs.map.items() if isinstance(v, bool)]):
                (key, flag), *_ = flags
                doc.problems.append(doc.problem((*where, "map", key), (
                    f"'{name}' of '{em.entity}' is text, but the map gives {key!r} the flag "
                    f"{flag}: quote it ('{flag}') for the text")))
            elif fs.formats is not None and not issubclass(known[name].python_type, dt.date):
                doc.problems.append(doc.problem((*where, "formats"), (
                    f"'{name}' of '{em.entity}' is not a date or a time, so `formats` would never be used: "
                    "remove it")))
            elif fs.formats and "epoch" in fs.formats and known[name].python_type is dt.date:
                doc.problems.append(doc.problem((*where, "formats"), (
                    f"'{name}' of '{em.entity}' is a date: `epoch` (seconds) reads date-times only")))
            elif fs.on_invalid == "null" and fs.required is None and known[name].required:
                # (`required: true` with `on_invalid: null` is refused by FieldSpec itself.)
                doc.problems.append(doc.problem((*where, "on_invalid"), (
                    f"`on_invalid: null` would leave '{name}' empty, but it is a required field of '{em.entity}' "
                    "(NOT NULL in the CRM); a required field cannot be left empty: remove `on_invalid: null`")))
            for t_i, call in enumerate(fs.transform):
                t_where = (*where, "transform", t_i)
                if call.name not in _transforms.transform_names():
                    doc.problems.append(doc.problem(t_where, f"unknown transform '{call.name}'{_transforms.suggest(call.name, _transforms.transform_names())}"))
                elif problem := _transforms.get_transform(call.name).bind_problem(call.args, context):
                    doc.problems.append(doc.problem(t_where, problem))
        for name, field_def in known.items():
            if field_def.required and name not in em.fields:
                doc.problems.append(doc.problem((*base, "fields"), f"required field '{name}' of '{em.entity}' is not mapped"))
        allowed_links = entity_links(em.entity)
        for parent, link in em.links.items():
            where = (*base, "links", parent)
            if parent not in allowed_links:
                doc.problems.append(doc.problem(where, f"'{em.entity}' has no parent '{parent}'"
                                                       f"{_transforms.suggest(parent, list(allowed_links) or ['(none)'])}"))
            elif link.source != "self" and link.source not in spec.sources:
                doc.problems.append(doc.problem((*where, "source"),
                                                f"unknown source '{link.source}'{_transforms.suggest(link.source, sorted(spec.sources) + ['self'])}"))
            elif link.source != "self" and not link.column:
                doc.problems.append(doc.problem(where, "a link to another source needs `column`"))
            elif not any(e.entity == parent and e.from_ == (em.from_ if link.source == "self" else link.source)
                         for e in spec.entities):
                doc.problems.append(doc.problem(where, f"no '{parent}' is mapped from that source in this file"))


def load_project(root: str | Path) -> Project:
    """Load ``crmmigrate.yml`` and every ``*.yml`` under its mappings folder.

    Raises ``MappingSpecError`` listing every problem in every file.
    """
    project, problems = read_project(root)
    if problems:
        raise MappingSpecError(problems)
    return project


def read_project(root: str | Path) -> tuple[Project, list[SpecProblem]]:
    """The project as far as its files can be read, and every problem in them.

    A mapping with problems is kept as far as the schema takes it (see ``Project.refused``),
    so that its columns can still be checked against its sources in the same pass. Raises
    ``MappingSpecError`` only when the settings file itself cannot be used.
    """
    root = Path(root).resolve()
    settings_path = root / SETTINGS_FILE
    problems: list[SpecProblem] = []
    if not settings_path.exists():
        raise MappingSpecError([SpecProblem(str(settings_path), None, "", "project settings file not found; "
                                            "a project folder holds crmmigrate.yml and mappings/")])
    doc = load_yaml(settings_path, SETTINGS_FILE)
    spec = _parse(doc, ProjectSpec)
    problems += doc.problems
    if spec is None:
        raise MappingSpecError(problems)
    project = Project(root, spec)
    folder = project.path(spec.mappings)
    files = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
    if not files:
        problems.append(SpecProblem(str(folder), None, "", "no mapping files (*.yml) found"))
    for path in files:
        shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        mapping, mdoc = load_mapping(path, shown)
        problems += mdoc.problems
        if mapping is None:
            continue
        if mapping.system in project.mappings:
            problems.append(mdoc.problem(("system",), f"system '{mapping.system}' is also defined in "
                                                      f"{project.files[mapping.system]}"))
            continue
        project.mappings[mapping.system] = mapping
        project.files[mapping.system] = shown
        if mdoc.refused:
            project.refused[mapping.system] = list(mdoc.refused)
    for entity, match in spec.match.items():
        for u_i, name in enumerate(match.unique):
            if name not in entity_fields(entity):
                problems.append(doc.problem(("match", entity, "unique", u_i),
                                            f"unknown field '{name}'{_transforms.suggest(name, list(entity_fields(entity)))}"))
    return project, problems


def check_columns(project: Project, headers: dict[str, list[str]]) -> list[SpecProblem]:
    """Every source column a mapping reads must exist in that source's real header.

    *headers* maps a source id (`system.table`) to its column names.
    """
    problems: list[SpecProblem] = []
    for system, mapping in project.mappings.items():
        doc = load_yaml(project.root / project.files[system], project.files[system])
        for table, source in mapping.sources.items():
            header = headers.get(mapping.source_id(table))
            if header is None:
                continue
            missing = [(path, column) for path, column in _wanted(mapping, table) if column not in header]
            if missing and not header:  # one problem, not one per column with an empty list of allowed ones
                problems.append(doc.problem(("sources", table), (
                    f"no column names could be read from source '{mapping.source_id(table)}': is it empty, or "
                    "broken before its first record? (`crmmigrate preview` shows how it reads)")))
                continue
            if missing and isinstance(source, CsvSource) and (hint := _header_hint(source, header)):
                problems.append(doc.problem(("sources", table, hint[0]), hint[1]))
                continue  # every missing column follows from it: one problem, not one per column
            refused = project.refused.get(system, [])
            for path, column in missing:
                if refused and _related(format_path(path), refused):
                    continue
                problems.append(doc.problem(path, f"column '{column}' is not in source "
                                                  f"'{mapping.source_id(table)}'{_transforms.suggest(column, header)}"))
    return problems


def _wanted(mapping: MappingSpec, table: str) -> list[tuple[KeyPath, str]]:
    """(where the mapping names it, column) for every column of *table* the mapping names."""
    source = mapping.sources[table]
    wanted: list[tuple[KeyPath, str]] = []
    if source.key != "row_number":
        wanted += [(("sources", table, "key"), k) for k in source.key]
    if source.last_modified:
        wanted.append((("sources", table, "last_modified", "column"), source.last_modified.column))
    for i, em in enumerate(mapping.entities):
        if em.from_ != table:
            continue
        for name, fs in em.fields.items():
            cols = [fs.column] if fs.column else list(fs.columns or ())
            wanted += [(("entities", i, "fields", name), c) for c in cols]
        wanted += [(("entities", i, "when_present"), c) for c in em.when_present]
    for i, em in enumerate(mapping.entities):
        for parent, link in em.links.items():
            if em.from_ == table and link.column:  # the key column lives in the child's source
                wanted.append((("entities", i, "links", parent, "column"), link.column))
    wanted += [(("sources", table, "ignore_columns", i), c) for i, c in enumerate(source.ignore_columns)]
    return wanted


def named_columns(mapping: MappingSpec, table: str) -> list[str]:
    """Every column of *table* the mapping names, once each, in the order it names them: the
    columns of a source file of no bytes, which has no header but must still map (to nothing)."""
    return list(dict.fromkeys(column for _, column in _wanted(mapping, table)))


_BOM_AS_SINGLE_BYTES = "\u00ef\u00bb\u00bf"  # a UTF-8 byte-order mark read as cp1252 or latin-1
_DELIMITERS = ",;\t|"


def _header_hint(source: CsvSource, header: list[str]) -> tuple[str, str] | None:
    """(key, message) when a CSV header shows why its columns are not found: a UTF-8 file read in
    a single-byte encoding, or a header read as one column."""
    if header[0].startswith(_BOM_AS_SINGLE_BYTES):
        fallback = f" and `fallback_encoding: {source.encoding}` for lines that are not" \
            if source.fallback_encoding is None else ""
        return "encoding", (f"the file starts with a UTF-8 byte-order mark, but is read as {source.encoding} "
                            f"(its first column reads {header[0]!r}): declare `encoding: utf-8`{fallback}")
    if len(header) == 1:
        counts = {d: header[0].count(d) for d in _DELIMITERS if d != source.delimiter}
        best = max(counts, key=counts.__getitem__)
        if counts[best]:
            return "delimiter", (f"the header reads as one column ({header[0][:60]!r}): its delimiter looks like "
                                 f"{best!r}; declare `delimiter: {json.dumps(best)}`")  # YAML reads "\t" as a tab
    return None
