"""Mapping and project specs: the typed model, YAML loading with places, and checks."""

from crmmigrate.spec.load import Project, load_mapping, load_project
from crmmigrate.spec.model import (
    ENTITY_NAMES,
    EntityMapping,
    FieldSpec,
    LinkSpec,
    MappingSpec,
    MatchSpec,
    ProjectSpec,
    TransformCall,
)

__all__ = [
    "ENTITY_NAMES", "EntityMapping", "FieldSpec", "LinkSpec", "MappingSpec", "MatchSpec",
    "Project", "ProjectSpec", "TransformCall", "load_mapping", "load_project",
]
