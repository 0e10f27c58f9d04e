"""The optional parts of the package and the extra that installs each. Stylizing (the command
line and the Python API) needs only the core install; training, the web app and the ONNX export
need their own stacks, and a command whose extra is missing says so in one line instead of an
import traceback."""

from __future__ import annotations

from importlib.util import find_spec

EXTRAS = {  # extra → the modules its commands cannot run without
    "train": ("lightning", "jsonargparse", "webdataset"),
    "app": ("fastapi", "uvicorn", "python_multipart", "fastapi_offline"),
    "export": ("onnx", "onnxscript"),
}


class MissingExtraError(ImportError):
    """A command's extra is not installed."""


def require(extra: str, command: str) -> None:
    """:class:`MissingExtraError` naming the extra to install unless every module it brings is there."""
    missing = [module for module in EXTRAS[extra] if find_spec(module) is None]
    if missing:
        raise MissingExtraError(
            f"{command} needs the [{extra}] extra ({', '.join(missing)} missing): pip install 'adain-style[{extra}]'"
        )
