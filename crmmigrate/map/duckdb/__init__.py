"""The DuckDB route of the map stage: a mapping compiled to SQL that says, per row and field,
whether its value is provably map_frame's (compile.py, from the rules' registered DuckDB halves),
one pass per source writing what it is sure of (passes.py), and the hand-over of the rest to
map_frame (doubtful.py). map_frame stays the reference; the route tests hold both equal."""

from crmmigrate.map.duckdb.compile import CompiledEntity, Failure, compile_entity, compile_or_why, sql_half
from crmmigrate.map.duckdb.passes import Part, map_sql
from crmmigrate.sqlpipe import _LAMBDA as OWN

__all__ = ["OWN", "CompiledEntity", "Failure", "Part", "compile_entity", "compile_or_why", "map_sql", "sql_half"]
