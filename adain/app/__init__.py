"""The browser app and HTTP API for real-time stylising: ``python -m adain.app`` (see docs/app.md)."""

from typing import TYPE_CHECKING

from adain.lazy import lazy_exports

_EXPORTS = {"Job": "stylist", "Limits": "limits", "Stylist": "stylist", "create_app": "server"}
__all__ = ["Job", "Limits", "Stylist", "create_app"]  # = _EXPORTS' keys
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .limits import Limits
    from .server import create_app
    from .stylist import Job, Stylist
