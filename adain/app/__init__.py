"""The browser app and HTTP API for real-time stylising: ``python -m adain.app`` (see README)."""

from .server import create_app
from .stylist import Job, Limits, Stylist

__all__ = ["Job", "Limits", "Stylist", "create_app"]
