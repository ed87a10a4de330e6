"""The new CRM's schema, shared by the map stage (target fields) and the load stage."""

from crmmigrate.crm.models import ENTITIES, LOAD_ORDER, Base, entity_fields, entity_links

__all__ = ["ENTITIES", "LOAD_ORDER", "Base", "entity_fields", "entity_links"]
