"""JSON Schemas and the mapping reference, generated from the spec model, never written by hand.

Hand-written references drift from the code (STYLE.md, anti-pattern 4), so everything a
consultant reads about mapping files comes from the models' field descriptions, the
``Literal`` vocabularies, the transform registry and the reason codes. Tests compare the
committed ``docs/`` files with this module's output. Regenerate them with::

    crmmigrate schema --write docs        # or: python -m crmmigrate.spec.docs docs
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import json
import sys
import tokenize
from decimal import Decimal
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy import String

from crmmigrate import transforms as _transforms
from crmmigrate.crm.models import ENTITIES, entity_fields, entity_links
from crmmigrate.spec import model
from crmmigrate.spec.reasons import OUTCOMES, Category, ReasonCode

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KINDS: dict[str, type[BaseModel]] = {"mapping": model.MappingSpec, "project": model.ProjectSpec}
REGENERATE = "crmmigrate schema --write docs"
# Transform parameters filled from the mapping rather than from `args:` (see transforms.Transform).
CONTEXT_ARGS = {"default_region": "the mapping's `default_region`"}
# Models documented inside their subclasses' tables rather than under a heading of their own.
FOLDED: tuple[type[BaseModel], ...] = (model.FileSource,)
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_TYPE_NAMES: dict[Any, str] = {str: "text", int: "integer", float: "number", bool: "true/false", Any: "any",
                               type(None): "null", dt.date: "date", dt.datetime: "date and time",
                               Decimal: "decimal"}


def spec_models() -> list[type[model.Spec]]:
    """Every model of the spec, found by subclassing so a new model cannot be forgotten."""
    found: list[type[model.Spec]] = []
    todo = list(model.Spec.__subclasses__())
    while todo:
        cls = todo.pop(0)
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def undocumented_fields() -> list[str]:
    """``Model.field`` for every spec field without a description."""
    return [f"{cls.__name__}.{name}" for cls in spec_models()
            for name, info in cls.model_fields.items() if not (info.description or "").strip()]


# --- JSON Schema ------------------------------------------------------------------------------


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a mapping or project file, with the YAML short forms the model accepts."""
    if kind not in KINDS:
        raise ValueError(f"unknown schema kind {kind!r}; kinds: {', '.join(KINDS)}")
    schema = KINDS[kind].model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    if "FieldSpec" in defs:
        defs["FieldSpec"] = _field_forms(defs["FieldSpec"])
    if "TransformCall" in defs:
        defs["TransformCall"] = _transform_forms(defs["TransformCall"])
    if "LinkSpec" in defs:
        defs["LinkSpec"] = {"anyOf": [{"const": "self", "description": "the same source record"}, defs["LinkSpec"]]}
    if "EntityMapping" in defs:
        defs["EntityMapping"]["allOf"] = [_entity_rule(e) for e in model.ENTITY_NAMES]
    return {"$schema": SCHEMA_DIALECT, **schema}


def schema_text(kind: str) -> str:
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def _field_forms(obj: dict[str, Any]) -> dict[str, Any]:
    # `email: EMAIL` is short for `email: {column: EMAIL}`; the long form needs exactly one input.
    obj["oneOf"] = [{"required": [k]} for k in ("column", "columns", "constant")]
    short = {"type": "string", "description": "short for `{column: …}`: the source column to read"}
    return {"description": obj.get("description", ""), "anyOf": [short, obj]}


def _transform_forms(obj: dict[str, Any]) -> dict[str, Any]:
    names = _transforms.transform_names()
    obj["properties"]["name"]["enum"] = names
    bare = {"enum": names, "description": "a transform without arguments"}
    with_args = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                 "description": "`{name: {argument: value}}`",
                 "properties": {n: _args_schema(n) for n in names}}
    return {"description": obj.get("description", ""), "anyOf": [bare, with_args, obj]}


def _args_schema(name: str) -> dict[str, Any]:
    params = transform_params(name)
    props = {p.name: {"type": _JSON_TYPES[str(p.annotation)]} if str(p.annotation) in _JSON_TYPES else {}
             for p in params}
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    return {"type": ["object", "null"], "properties": props, "required": required, "additionalProperties": False}


def _entity_rule(entity: str) -> dict[str, Any]:
    fields = entity_fields(entity)
    required = [n for n, f in fields.items() if f.required]
    return {"if": {"properties": {"entity": {"const": entity}}, "required": ["entity"]},
            "then": {"properties": {
                "fields": {"propertyNames": {"enum": list(fields)}, "required": required},
                "links": {"propertyNames": {"enum": list(entity_links(entity))}}}}}


# --- the reference --------------------------------------------------------------------------


def transform_params(name: str) -> list[inspect.Parameter]:
    """The arguments a mapping may give *name*: not the values, not the ones filled from context."""
    params = list(inspect.signature(_transforms.get_transform(name).fn).parameters.values())[1:]
    return [p for p in params if p.name not in CONTEXT_ARGS]


def type_name(annotation: Any, top: bool = True) -> str:
    """A spec type as a consultant reads it: ``list of text or `row_number```.

    A field's own ``None`` is left out (its default says "none"); ``None`` inside a container stays.
    """
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_name(args[0], top)
    if origin in (Union, UnionType):
        return " or ".join(type_name(a, False) for a in args if not (top and a is type(None)))
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (tuple, list):
        inner = type_name(args[0] if args else Any, False)
        return f"list of ({inner})" if get_origin(args[0]) in (tuple, list) else f"list of {inner}"
    if origin is dict:
        return f"map of {type_name(args[0], False)} → {type_name(args[1], False)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_section(cls: type[BaseModel], level: int = 3, skip: tuple[str, ...] = ()) -> list[str]:
    """A heading, the docstring and one table row per field (its YAML key, type, default, description)."""
    out = [f"{'#' * level} {cls.__name__}", ""]
    if cls.__doc__:
        out += [inspect.cleandoc(cls.__doc__), ""]
    out += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for name, info in cls.model_fields.items():
        if name in skip:
            continue
        key = info.alias or name
        out.append(f"| `{key}` | {_cell(type_name(info.annotation))} | {_cell(default_text(info))} "
                   f"| {_cell(info.description or '')} |")
    return [*out, ""]


def _sources_section() -> list[str]:
    common = tuple(model.SourceBase.model_fields)
    out = ["### Sources", "", "Every entry under `sources:` has a `format:` that decides its other keys.", "",
           "Column names are the source's own, trimmed, with three exceptions that keep every column "
           "addressable: a repeated name gets `~2`, `~3`… (`Note`, `Note~2`); a blank one is `column_N`, N its "
           "1-based position; a name crmmigrate uses itself (`_source_key`, `_row_number`…) gets `~2`. A "
           "made-up name never takes one a real column has; `crmmigrate validate` lists the names when a mapping "
           "uses another.", "",
           *model_section(model.SourceBase, 4)]
    for cls in get_args(get_args(model.SourceSpec)[0]):
        out += model_section(cls, 4, skip=common)
    return out


def _vocabularies() -> list[str]:
    rows = [("entity", model.EntityName), ("source format", model.SourceFormat),
            ("duplicate_keys", model.DuplicateKeys), ("on_invalid", model.OnInvalid), ("reject category", Category)]
    out = ["## Vocabularies", "", "| name | values |", "| --- | --- |"]
    out += [f"| {name} | {', '.join(f'`{v}`' for v in get_args(lit))} |" for name, lit in rows]
    out.append(f"| ledger outcome | {', '.join(f'`{v}`' for v in OUTCOMES)} |")
    return [*out, ""]


def _entity_tables() -> list[str]:
    out = ["## Entities and their fields", "",
           "The keys a mapping may give under `fields:` and `links:`. A required field must be mapped.", ""]
    for entity in model.ENTITY_NAMES:
        out += [f"### {entity}", "", "| field | type | required | max length |", "| --- | --- | --- | --- |"]
        table = ENTITIES[entity].__table__
        for name, f in entity_fields(entity).items():
            column_type = table.columns[name].type
            length = column_type.length if isinstance(column_type, String) and column_type.length else ""
            out.append(f"| `{name}` | {type_name(f.python_type)} | {'yes' if f.required else ''} | {length} |")
        parents = entity_links(entity)
        out += ["", f"Links: {', '.join(f'`{p}`' for p in parents) if parents else 'none'}.", ""]
    return out


def _transform_section() -> list[str]:
    out = ["## Transforms", "",
           "Applied in order under `transform:`; write `name` alone or `{name: {argument: value}}`.", ""]
    for name in _transforms.transform_names():
        t = _transforms.get_transform(name)
        params = transform_params(name)
        args = ", ".join(f"`{p.name}`" + (f" (default `{p.default}`)" if p.default is not p.empty else "")
                         for p in params)
        context = [f"`{p}` from {CONTEXT_ARGS[p]}" for p in inspect.signature(t.fn).parameters if p in CONTEXT_ARGS]
        out += [f"### `{name}`", "", doc_prose(inspect.getdoc(t.fn)) or "_No docstring._", "",
                f"- arguments: {args or 'none'}"]
        out += [f"- filled in: {', '.join(context)}"] if context else []
        out += [f"- a refused value is rejected as `{t.reason}`" if t.reason is not ReasonCode.TRANSFORM_ERROR
                else "- refuses no value; if it raises, the records are rejected as `transform_error`", ""]
    return out


def doc_prose(doc: str | None) -> str:
    """A numpy docstring without its sections (``Parameters`` over dashes would render as a heading;
    the arguments are listed from the signature anyway)."""
    lines = (doc or "").splitlines()
    for i in range(len(lines) - 1):
        if lines[i].strip() and set(lines[i + 1].strip()) == {"-"}:
            lines = lines[:i]
            break
    return "\n".join(lines).strip()


def reason_stages() -> dict[ReasonCode, str]:
    """Each code's group comment in ``reasons.py`` (``# extract: …``), read from its source."""
    stage, out, last = "", {}, None
    source = inspect.getsource(ReasonCode)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and tok.line.strip().startswith("#"):
            stage = tok.string.lstrip("# ")
        elif tok.type == tokenize.COMMENT and last is not None:  # a comment after the member: its own note
            out[last] += f"; {tok.string.lstrip('# ')}"
        elif tok.type == tokenize.NAME and tok.string in ReasonCode.__members__ and tok.start[1] == 4:
            last = ReasonCode[tok.string]
            out[last] = stage
    return out


def _reason_section() -> list[str]:
    stages = reason_stages()
    out = ["## Reason codes", "", "Every reject carries one code; reports group them by category.", "",
           "| code | category | when |", "| --- | --- | --- |"]
    out += [f"| `{code}` | {code.category} | {_cell(stages.get(code, ''))} |" for code in ReasonCode]
    return [*out, ""]


EDITOR_NOTE = """\
Editors can complete and check these files. With the YAML extension (VS Code) or any editor
using yaml-language-server, start a mapping file with

```yaml
# yaml-language-server: $schema=../docs/mapping.schema.json
```

and `crmmigrate.yml` with `# yaml-language-server: $schema=docs/project.schema.json` (paths are
relative to the file). `crmmigrate schema --kind mapping` prints the schema.
"""


def reference_markdown() -> str:
    """The whole of ``docs/mapping-reference.md``."""
    listed = [model.ProjectSpec, model.MatchSpec, model.MatchTraining, model.MappingSpec, model.SourceBase, model.FileSource,
              *get_args(get_args(model.SourceSpec)[0]), model.LastModified, model.EntityMapping,
              model.FieldSpec, model.TransformCall, model.LinkSpec]
    extra = [cls for cls in spec_models() if cls not in listed]  # a new model still shows up
    lines = ["# Mapping reference", "",
             f"Generated from the spec model by `{REGENERATE}`; do not edit by hand.", "", EDITOR_NOTE,
             "## Project settings: `crmmigrate.yml`", "", *model_section(model.ProjectSpec),
             *model_section(model.MatchSpec), *model_section(model.MatchTraining),
             "## Mapping files: `mappings/*.yml`", "", *model_section(model.MappingSpec), *_sources_section(),
             *model_section(model.LastModified), *model_section(model.EntityMapping),
             *model_section(model.FieldSpec), *model_section(model.TransformCall), *model_section(model.LinkSpec)]
    for cls in extra:
        lines += model_section(cls)
    lines += [*_vocabularies(), *_entity_tables(), *_transform_section(), *_reason_section()]
    return "\n".join(lines).rstrip("\n") + "\n"


def generated_files() -> dict[str, str]:
    """File name under ``docs/`` → its generated text."""
    return {"mapping.schema.json": schema_text("mapping"), "project.schema.json": schema_text("project"),
            "mapping-reference.md": reference_markdown()}


def write_docs(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generated_files().items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write_docs(sys.argv[1] if len(sys.argv) > 1 else "docs"):
        print(f"wrote {path}")
