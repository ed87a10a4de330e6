"""crmmigrate: move customer data from departmental legacy systems into one CRM.

Importing the package has no side effects: no logging set-up, no environment loading.
``crmmigrate.preview`` is imported on first use, so ``import crmmigrate`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmmigrate.previewing import preview

__version__ = "0.1.0"
__all__ = ["preview"]


def __getattr__(name: str) -> Any:
    # PEP 562: pandas, pyarrow and the readers load only when a preview is asked for.
    if name == "preview":
        from crmmigrate.previewing import preview

        return preview
    raise AttributeError(f"module 'crmmigrate' has no attribute {name!r}")
