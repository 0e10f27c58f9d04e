"""Decoder weight files: our safetensors format, Lightning checkpoints, pytorch-AdaIN's ``decoder.pth``.

Our format is a safetensors file of :class:`~adain.model.decoder.Decoder`'s state dict with string
metadata: ``format``, ``arch`` (architecture version) and ``encoder`` (the identity of the
VGG19 it was trained on, see :attr:`VGG19Encoder.identity`), plus free-form training facts.
A decoder only works on the encoder it was trained with, so loading checks that identity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file
from torch import Tensor

from adain.core.atomicfile import atomic_path
from adain.core.errors import one_line
from adain.model.decoder import ARCH, Decoder

FORMAT = "adain-decoder"
# Conv positions in pytorch-AdaIN's decoder Sequential (with explicit ReflectionPad2d layers).
_ADAIN_DECODER_CONV_INDEX = (1, 5, 8, 11, 14, 18, 21, 25, 28)
ADAIN_VGG_LAYOUT = "vgg_normalised"


class DecoderFileError(ValueError):
    """A decoder file is unreadable, of an unknown layout, or made for another encoder."""


def save_decoder(
    decoder: Decoder,
    path: str | os.PathLike,
    encoder_identity: str,
    metadata: Mapping[str, object] | None = None,
    dtype: torch.dtype = torch.float32,
) -> None:
    """Write ``decoder`` as safetensors with its metadata, atomically (temp file + rename).

    ``metadata`` values that are not strings are stored as JSON. ``dtype`` is the weights' storage
    type (``torch.float16`` halves the file); :func:`load_decoder` reads them back as fp32.
    """
    path = Path(path)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta.update(format=FORMAT, arch=ARCH, encoder=encoder_identity)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in decoder.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata=meta)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of one of our safetensors decoder files."""
    return _read_safetensors(Path(path))[1]


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Weights and metadata of a safetensors file, parsed from its bytes: ``safe_open`` refuses
    file names that are not UTF-8, which the file system allows and ``save_decoder`` writes."""
    try:
        data = path.read_bytes()
        state = load(data)
    except (SafetensorError, OSError) as err:
        raise DecoderFileError(f"{path}: not a readable safetensors decoder file ({err})") from None
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])  # valid JSON: load() just checked it
    return state, header.get("__metadata__") or {}


def load_decoder(path: str | os.PathLike, encoder_identity: str, encoder_layout: str) -> tuple[Decoder, dict[str, str]]:
    """Load a decoder for the encoder with ``encoder_identity``; returns it and its metadata.

    Accepts our ``.safetensors`` files, Lightning ``.ckpt`` files written by ``train.py``, and
    pytorch-AdaIN's ``decoder.pth`` (only together with its ``vgg_normalised.pth`` encoder,
    i.e. ``encoder_layout == "vgg_normalised"``, since those files carry no metadata).
    """
    path = Path(path)
    if path.is_dir():
        raise DecoderFileError(f"{path}: is a folder, not a decoder file")
    if not path.is_file():
        raise DecoderFileError(f"{path}: no such decoder file")
    if path.suffix.lower() == ".safetensors":
        state, meta = _read_safetensors(path)
        if meta.get("format") != FORMAT or "encoder" not in meta:  # without it there is nothing to check
            raise DecoderFileError(f"{path}: not an AdaIN decoder file (no '{FORMAT}' metadata naming its encoder)")
    else:
        state, meta = _read_torch_file(path, encoder_layout)
    if meta.get("arch") != ARCH:
        raise DecoderFileError(f"{path}: decoder architecture {meta.get('arch')!r} is not {ARCH!r}")
    if meta.get("encoder", encoder_identity) != encoder_identity:
        raise DecoderFileError(
            f"{path}: this decoder was trained on encoder '{meta['encoder']}' but the encoder in use is "
            f"'{encoder_identity}'; pass the matching --vgg"
        )
    decoder = Decoder()
    try:
        decoder.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        raise DecoderFileError(f"{path}: weights do not fit the decoder ({one_line(err, last=True)})") from None
    broken = [name for name, weight in decoder.state_dict().items() if not torch.isfinite(weight).all()]
    if broken:  # a run that diverged: every output would be NaN, written as a black image
        raise DecoderFileError(f"{path}: the weights hold NaN or infinity ({', '.join(broken)})")
    return decoder.eval(), meta


def _read_torch_file(path: Path, encoder_layout: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """State dict and metadata from a Lightning ``.ckpt`` or a pytorch-AdaIN ``decoder.pth``."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise DecoderFileError(f"{path}: cannot read as a weights-only torch file ({type(err).__name__})") from None
    if isinstance(obj, Mapping) and "state_dict" in obj:  # Lightning checkpoint from train.py
        prefix = "decoder."
        state = {k[len(prefix) :]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}
        meta = dict(obj.get("adain_metadata") or {})
        if not state or "encoder" not in meta:
            raise DecoderFileError(f"{path}: not a train.py checkpoint (no decoder weights or encoder identity)")
        return state, meta
    if isinstance(obj, Mapping) and all(f"{i}.weight" in obj for i in _ADAIN_DECODER_CONV_INDEX):
        if encoder_layout != ADAIN_VGG_LAYOUT:
            raise DecoderFileError(
                f"{path}: a pytorch-AdaIN decoder works only with its own encoder; pass --vgg path/to/vgg_normalised.pth"
            )
        ours = Decoder().conv_indices()
        state = {
            f"{new}.{kind}": obj[f"{old}.{kind}"]
            for old, new in zip(_ADAIN_DECODER_CONV_INDEX, ours)
            for kind in ("weight", "bias")
        }
        return state, {"arch": ARCH, "source": "pytorch-AdaIN decoder.pth"}
    raise DecoderFileError(f"{path}: unknown decoder file layout (expected .safetensors, a train.py .ckpt or pytorch-AdaIN's decoder.pth)")
