"""Measuring style transfer: wall-clock seconds, peak memory, and the plain reference network.

The reference is the AdaIN network written the textbook way (fp32, eager, NCHW): VGG19 to
relu4_1 from ``nn.Conv2d`` + ``nn.ReLU`` + ``nn.MaxPool2d``, AdaIN, and the paper's decoder from
``nn.ReflectionPad2d`` + ``nn.Conv2d`` + ``nn.Upsample``, with the same weights as the
:class:`~adain.model.style_transfer.StyleTransfer` being measured. Speed-ups are quoted against it, and its
output must agree with the optimised path.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from adain.core.allocator import keep_freed_memory
from adain.jobs.image import load, stylize
from adain.jobs.request import ImageSource, Request
from adain.model.decoder import Decoder
from adain.model.functional import mean_std
from adain.model.style_transfer import StyleTransfer
from adain.vgg.encoder import LAYER_INDEX, VGG19Encoder

from . import metrics

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock times are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA: allocator statistics; Linux CPU: the RSS high-water mark)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif device.type == "cpu" and _CLEAR_REFS.exists():
        try:
            _CLEAR_REFS.write_text("5")  # "5" resets VmHWM to the current RSS (Linux ≥ 4.0)
        except OSError:
            pass


def peak_memory_mib(device: torch.device) -> float | None:
    """Peak since :func:`reset_peak_memory`, in MiB: CUDA ``max_memory_allocated``; on the CPU the
    process's peak resident memory (weights, Python and the allocator's cache included); None elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type == "cpu" and _STATUS.exists():
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def time_call(fn: Callable[[], object], device: torch.device, repeat: int, warmup: int = 1) -> tuple[float, float | None]:
    """Median seconds of ``repeat`` calls after ``warmup`` untimed ones, synchronised; and the peak memory (MiB)."""
    for _ in range(warmup):
        fn()
    sync(device)
    reset_peak_memory(device)
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), peak_memory_mib(device)


class PlainAdaIN(nn.Module):
    """The reference: the same encoder (to relu4_1) and decoder weights in textbook PyTorch modules."""

    def __init__(self, encoder: VGG19Encoder, decoder: Decoder):
        super().__init__()
        reflect = encoder.convs[0].padding_mode == "reflect"
        layers: list[nn.Module] = [_copy(encoder.preprocess, nn.Conv2d(3, 3, 1))]
        for i, conv in enumerate(encoder.convs[: LAYER_INDEX["relu4_1"] + 1]):
            if reflect:  # pytorch-AdaIN's vgg_normalised.pth
                layers += [nn.ReflectionPad2d(1), _copy(conv, nn.Conv2d(conv.in_channels, conv.out_channels, 3))]
            else:
                layers.append(_copy(conv, nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1)))
            layers.append(nn.ReLU())
            if i in encoder.pool_after and i < LAYER_INDEX["relu4_1"]:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=encoder.ceil_mode))
        self.encoder = nn.Sequential(*layers)
        layers = []
        for layer in decoder:
            if isinstance(layer, nn.Conv2d):
                layers += [nn.ReflectionPad2d(1), _copy(layer, nn.Conv2d(layer.in_channels, layer.out_channels, 3))]
            else:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest") if isinstance(layer, nn.Upsample) else nn.ReLU())
        self.decoder = nn.Sequential(*layers)
        self.requires_grad_(False).eval()

    @torch.no_grad()
    def encode_style(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """Channel mean and std of the style's relu4_1 features."""
        return mean_std(self.encoder(style))

    @torch.no_grad()
    def forward(self, content: Tensor, style_mean: Tensor, style_std: Tensor) -> Tensor:
        """Content (N×3×H×W, sides multiples of 8) → stylized image in [0, 1]."""
        feat = self.encoder(content)
        mean, std = mean_std(feat)
        return self.decoder((feat - mean) / std * style_std + style_mean).clamp(0, 1)


def _copy(source: nn.Conv2d, target: nn.Conv2d) -> nn.Conv2d:
    """``target`` with ``source``'s weights (the layers differ only in how they pad)."""
    target.load_state_dict(source.state_dict())
    return target.to(source.weight.device)


@dataclass
class SpeedRow:
    """Seconds per image of one method at one size (None: not applicable to the method)."""

    method: str
    size: int
    batch: int
    cached_s: float | None  # style statistics encoded beforehand (AdaIN only)
    with_style_s: float | None  # style encoding included
    peak_mib: float | None
    speedup: float | None = None  # plain reference's cached_s / this cached_s
    max_abs_diff: float | None = None  # largest pixel difference to the plain reference's output


@dataclass
class QualityRow:
    """Mean losses of one method's outputs at one size, over the benchmark's pairs."""

    method: str
    size: int
    content_loss: float
    adain_style_loss: float
    gram_style_loss: float


@dataclass
class SizeResult:
    """Everything at one size: the input pairs, speed and quality rows, and each method's outputs."""

    contents: list[Tensor]
    styles: list[Tensor]
    speed: list[SpeedRow] = field(default_factory=list)
    quality: list[QualityRow] = field(default_factory=list)
    outputs: dict[str, list[Tensor]] = field(default_factory=dict)


IDENTITY_LABEL = "identity (output = content)"  # how the reports name the baseline that changes nothing


def adain_label(precision: str, compile: str | None = None) -> str:
    """How the report names our AdaIN."""
    return f"AdaIN ({precision}{'' if compile is None else f', compiled {compile}'})"


def gatys_label_for(steps: int, precision: str = "fp32") -> str:
    """How the report names Gatys with ``steps`` steps."""
    return f"Gatys ({steps} L-BFGS step{'s' * (steps != 1)}{'' if precision == 'fp32' else ', ' + precision})"


def gatys_precision(precision: str) -> str:
    """The precision Gatys runs at in a run whose AdaIN runs at ``precision``: the same where
    Gatys has it (gatys.config.PRECISIONS: not fp16), else fp32."""
    from gatys.config import PRECISIONS  # the optional method: imported only when measured

    return precision if precision in PRECISIONS else "fp32"


def measure_plain(
    plain: PlainAdaIN, contents: Sequence[Tensor], styles: Sequence[Tensor], repeat: int
) -> tuple[SpeedRow, list[Tensor]]:
    """The reference's speed (batch 1, with and without style encoding) and its outputs."""
    device = next(plain.parameters()).device
    codes = [plain.encode_style(s) for s in styles]
    cached, peak = time_call(lambda: [plain(c, *code) for c, code in zip(contents, codes)], device, repeat)
    with_style, _ = time_call(lambda: [plain(c, *plain.encode_style(s)) for c, s in zip(contents, styles)], device, repeat)
    n = len(contents)
    row = SpeedRow("plain fp32 eager (reference)", contents[0].shape[-1], 1, cached / n, with_style / n, peak, 1.0, 0.0)
    return row, [plain(c, *code) for c, code in zip(contents, codes)]


def measure_adain(
    st: StyleTransfer, contents: Sequence[Tensor], styles: Sequence[Tensor], batch: int, repeat: int
) -> tuple[list[SpeedRow], list[Tensor]]:
    """Our AdaIN's speed: batch 1 with and without style encoding, and ``batch`` contents at once
    sharing one style (0: not); and its outputs (batch 1). Compiled, three warm-up calls per measurement:
    one compiles, and with CUDA graphs the next ones record them."""
    device, size, n = st.device, contents[0].shape[-1], len(contents)
    label = adain_label(st.precision, st.compile_mode)
    warmup = 1 if st.compile_mode is None else 3
    codes = [st.encode_style(s) for s in styles]
    cached, peak = time_call(lambda: [st(c, [code]) for c, code in zip(contents, codes)], device, repeat, warmup)
    with_style, _ = time_call(lambda: [st(c, [st.encode_style(s)]) for c, s in zip(contents, styles)], device, repeat, warmup)
    rows = [SpeedRow(label, size, 1, cached / n, with_style / n, peak)]
    if not batch:
        return rows, [st(c, [code]) for c, code in zip(contents, codes)]
    stacked = torch.cat([contents[i % n] for i in range(batch)])
    cached_b, peak_b = time_call(lambda: st(stacked, codes[:1]), device, repeat, warmup)
    with_style_b, _ = time_call(lambda: st(stacked, [st.encode_style(styles[0])]), device, repeat, warmup)
    rows.append(SpeedRow(f"{label}, batched", size, batch, cached_b / batch, with_style_b / batch, peak_b))
    return rows, [st(c, [code]) for c, code in zip(contents, codes)]


ONNX_LABEL = "ONNX Runtime (fp32, CPU; adain-export graphs)"
ADAIN_VARIANTS = {"adain-bf16": ("bf16", None), "adain-compiled": (None, "default")}  # precision (None: the run's), compile
OPENVINO_PRECISIONS = {"openvino": None, "openvino-f32": "f32"}  # None: the CPU plugin's default (bf16 on bf16 hardware)
GRAPH_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino-f32": "openvino"}  # the [export] extra


@dataclass
class GraphRunner:
    """The graphs ``adain-export --onnx`` writes, run by another engine on the CPU: style →
    statistics, and content + statistics + α → image, on numpy arrays."""

    label: str
    encode: Callable[[np.ndarray], list[np.ndarray]]
    stylize: Callable[[np.ndarray, list[np.ndarray]], np.ndarray]


def graph_runners(st: StyleTransfer, methods: Sequence[str]) -> dict[str, GraphRunner]:
    """A runner for each of ``methods`` that runs the exported graphs (:data:`GRAPH_PACKAGES`), on
    graphs exported once for the run, with torch's thread count."""
    wanted = [m for m in methods if m in GRAPH_PACKAGES]
    if not wanted:
        return {}
    from adain.model.onnx_export import export_onnx

    with tempfile.TemporaryDirectory() as folder:  # an engine keeps the graph it read
        paths = export_onnx(st, folder)
        return {m: onnxruntime_runner(paths) if m == "onnxruntime" else openvino_runner(paths, OPENVINO_PRECISIONS[m]) for m in wanted}


def onnxruntime_runner(paths: Sequence[Path]) -> GraphRunner:
    """ONNX Runtime's CPU provider on the two graphs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    styler, stylizer = (ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]) for path in paths)
    alpha = np.array(1.0, dtype=np.float32)
    return GraphRunner(
        ONNX_LABEL,
        lambda style: styler.run(None, {"style": style}),
        lambda content, code: stylizer.run(None, {"content": content, "mean": code[0], "std": code[1], "alpha": alpha})[0],
    )


def openvino_runner(paths: Sequence[Path], precision: str | None) -> GraphRunner:
    """OpenVINO's CPU plugin on the two graphs, at ``precision`` (``f32``), or None: its default
    (bf16 where the CPU computes bf16 in hardware); the label says which it used."""
    import openvino as ov

    core = ov.Core()
    config: dict[str, object] = {"INFERENCE_NUM_THREADS": torch.get_num_threads()}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    styler, stylizer = (core.compile_model(core.read_model(str(path)), "CPU", config) for path in paths)
    used = stylizer.get_property("INFERENCE_PRECISION_HINT").to_string()  # bf16, f32
    alpha = np.array(1.0, dtype=np.float32)
    return GraphRunner(
        f"OpenVINO ({used}, CPU{', its default' if precision is None else ''}; adain-export graphs)",
        lambda style: list(styler(style).values()),
        lambda content, code: stylizer({"content": content, "mean": code[0], "std": code[1], "alpha": alpha})[0],
    )


def measure_graphs(
    runner: GraphRunner, contents: Sequence[Tensor], styles: Sequence[Tensor], repeat: int
) -> tuple[SpeedRow, list[Tensor]]:
    """``runner``'s speed, batch 1 (style cached and included), and its outputs."""
    cpu, n = torch.device("cpu"), len(contents)
    arrays = [c.cpu().numpy() for c in contents]
    codes = [runner.encode(s.cpu().numpy()) for s in styles]
    cached, _ = time_call(lambda: [runner.stylize(c, k) for c, k in zip(arrays, codes)], cpu, repeat)
    with_style, _ = time_call(lambda: [runner.stylize(c, runner.encode(s.cpu().numpy())) for c, s in zip(arrays, styles)], cpu, repeat)
    outputs = [torch.from_numpy(np.asarray(runner.stylize(c, k))).to(contents[0].device) for c, k in zip(arrays, codes)]
    return SpeedRow(runner.label, contents[0].shape[-1], 1, cached / n, with_style / n, None), outputs


def measure_gatys(
    encoder: VGG19Encoder,
    contents: Sequence[Tensor],
    styles: Sequence[Tensor],
    steps: int,
    progress: bool = False,
    precision: str = "fp32",
) -> tuple[SpeedRow, list[Tensor]]:
    """Gatys with its defaults and ``steps`` L-BFGS steps, timed once per pair after a one-step
    warm-up (style Gram matrices included); and its outputs."""
    from gatys import DEFAULTS  # the optional method: imported only when measured
    from gatys import stylize as gatys_stylize

    device = encoder.preprocess.weight.device
    gatys_stylize(contents[0], styles[0], replace(DEFAULTS, steps=1), encoder=encoder, progress=False, precision=precision)
    sync(device)
    reset_peak_memory(device)
    seconds, outputs = [], []
    for content, style in zip(contents, styles):
        start = time.perf_counter()
        run = gatys_stylize(content, style, replace(DEFAULTS, steps=steps), encoder=encoder, progress=progress, precision=precision)
        outputs.append(run.image)
        sync(device)
        seconds.append(time.perf_counter() - start)
    size = contents[0].shape[-1]
    row = SpeedRow(gatys_label_for(steps, precision), size, 1, None, statistics.mean(seconds), peak_memory_mib(device))
    return row, outputs


def measure_quality(
    encoder: VGG19Encoder, method: str, outputs: Sequence[Tensor], contents: Sequence[Tensor], styles: Sequence[Tensor]
) -> QualityRow:
    """The mean of the three :mod:`compare.metrics` losses over the pairs."""
    scores = [metrics.quality(encoder, o, c, s) for o, c, s in zip(outputs, contents, styles)]
    return mean_quality(method, contents[0].shape[-1], scores)


def mean_quality(method: str, size: int, scores: Sequence[metrics.Quality]) -> QualityRow:
    """The row of ``method`` at ``size``: each loss averaged over the pairs' ``scores``."""
    mean = {name: statistics.mean(getattr(q, name) for q in scores) for name in metrics.METRICS}
    return QualityRow(method, size, **mean)


@dataclass
class Setup:
    """What to measure: image pairs (paths), square sizes, methods, and how."""

    pairs: list[tuple[Path, Path]]
    sizes: list[int]
    methods: list[str]
    device: torch.device
    precision: str = "fp32"
    compile: str | None = None  # AdaIN's torch.compile mode (adain.core.options.COMPILE_MODES)
    gatys_steps: int = 500
    repeat: int = 3
    batch: int = 4
    progress: bool = True


def run(setup: Setup, encoder: VGG19Encoder, decoder: Decoder) -> dict[int, SizeResult]:
    """Measure every size: the plain reference first (default allocator), then, after
    :func:`~adain.core.allocator.keep_freed_memory` on the CPU as :meth:`StyleTransfer.load` does,
    our AdaIN, Gatys, and the quality of each method's outputs (with the identity baseline), on
    the fixed :func:`metrics.evaluation_encoder` whatever ``encoder`` the model uses."""
    device = setup.device
    missing = [m for m in setup.methods if m in GRAPH_PACKAGES and (device.type != "cpu" or find_spec(GRAPH_PACKAGES[m]) is None)]
    for method in missing:
        print(f"{method} left out: it is measured on the CPU, with the [export] extra installed", file=sys.stderr)
    setup.methods = [m for m in setup.methods if m not in missing]
    plain = PlainAdaIN(encoder, decoder).to(device)
    st = StyleTransfer(encoder, decoder, setup.precision, setup.compile).to(device)
    variants = {
        m: StyleTransfer(encoder, decoder, precision or setup.precision, compile).to(device)
        for m, (precision, compile) in ADAIN_VARIANTS.items()
        if m in setup.methods
    }
    runners = graph_runners(st, setup.methods)
    results = {size: SizeResult(*_load_pairs(setup.pairs, size, device)) for size in setup.sizes}
    evaluator = metrics.evaluation_encoder().to(device)
    stages = [("plain", size) for size in setup.sizes if set(setup.methods) - {"gatys"}]
    stages += [(method, size) for size in setup.sizes for method in setup.methods] + [("quality", s) for s in setup.sizes]
    bar = tqdm(stages, desc="benchmark", unit="stage", disable=not setup.progress)
    for stage, size in bar:
        bar.set_postfix_str(f"{stage} {size}px")
        result = results[size]
        contents, styles = result.contents, result.styles
        if stage == "plain":
            row, result.outputs["plain"] = measure_plain(plain, contents, styles, setup.repeat)
            result.speed.append(row)
            continue
        if device.type == "cpu":
            keep_freed_memory()  # only after the reference, which runs as a plain script would
        if stage == "adain":
            rows, ours = measure_adain(st, contents, styles, setup.batch, setup.repeat)
            reference = result.speed[0].cached_s
            for row in rows:
                row.speedup = reference / row.cached_s
            rows[0].max_abs_diff = max((o - p).abs().max().item() for o, p in zip(ours, result.outputs["plain"]))
            result.speed += rows
            # The outputs judged and shown are what a user gets for each pair's request.
            result.outputs["adain"] = [stylize(st, request).rgb.to(device) for request in _requests(setup.pairs, size)]
        elif stage in variants:
            (row,), result.outputs[stage] = measure_adain(variants[stage], contents, styles, 0, setup.repeat)
            _compare(row, result, stage)
        elif stage in runners:
            row, result.outputs[stage] = measure_graphs(runners[stage], contents, styles, setup.repeat)
            _compare(row, result, stage)
        elif stage == "gatys":
            row, result.outputs["gatys"] = measure_gatys(
                encoder, contents, styles, setup.gatys_steps, setup.progress, gatys_precision(setup.precision)
            )
            result.speed.append(row)
        else:
            labels = {
                "identity": IDENTITY_LABEL,
                "adain": adain_label(setup.precision, setup.compile),
                "gatys": gatys_label_for(setup.gatys_steps, gatys_precision(setup.precision)),
                **{m: adain_label(v.precision, v.compile_mode) for m, v in variants.items()},
                **{m: r.label for m, r in runners.items()},
            }
            for method, outputs in [("identity", contents)] + [(m, result.outputs[m]) for m in setup.methods]:
                result.quality.append(measure_quality(evaluator, labels[method], outputs, contents, styles))
    return results


def _compare(row: SpeedRow, result: SizeResult, method: str) -> None:
    """Add ``row`` with its speed-up over the plain reference of the same size and run, and the
    largest pixel difference of ``method``'s outputs from the reference's."""
    row.speedup = result.speed[0].cached_s / row.cached_s
    row.max_abs_diff = max((o - p).abs().max().item() for o, p in zip(result.outputs[method], result.outputs["plain"]))
    result.speed.append(row)


def _requests(pairs: Sequence[tuple[Path, Path]], size: int) -> list[Request]:
    """Each pair as the request ``infer.py --content-size S --style-size S --crop`` would make."""
    return [pair_request(pair, size) for pair in pairs]


def pair_request(pair: tuple[Path, Path], size: int, alpha: float = 1.0) -> Request:
    """One pair as the request ``infer.py --content-size S --style-size S --crop --alpha A`` would make."""
    content, style = pair
    return Request(ImageSource.file(content), (ImageSource.file(style),), alpha=alpha, content_size=size, style_size=size, crop=True)


def _load_pairs(pairs: Sequence[tuple[Path, Path]], size: int, device: torch.device) -> tuple[list[Tensor], list[Tensor]]:
    """Contents and styles resized (shorter side) and centre-cropped to size×size, read as the
    command line and the app read a request's images (:func:`adain.jobs.image.load`); the timings
    then measure the model alone, without the decoding."""
    contents = [load(ImageSource.file(c), size, crop=True).rgb.to(device) for c, _ in pairs]
    styles = [load(ImageSource.file(s), size, crop=True).rgb.to(device) for _, s in pairs]
    return contents, styles
