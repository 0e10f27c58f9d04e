"""The browser app and HTTP API for real-time stylizing: ``python -m adain.app`` (see docs/app.md)."""

from typing import TYPE_CHECKING

from adain.core.lazy import lazy_exports

_EXPORTS = {"Job": "job_queue", "Limits": "limits", "Stylist": "job_queue", "create_app": "server"}
__all__ = ["Job", "Limits", "Stylist", "create_app"]  # = _EXPORTS' keys
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .job_queue import Job, Stylist
    from .limits import Limits
    from .server import create_app
