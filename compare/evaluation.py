"""The decoder's evaluation: several methods stylize the same content/style pairs, scored by :mod:`compare.metrics`.

A method is given as a spec (:func:`parse_methods`): ``identity`` (the content image as output),
``style`` (the style image as output), ``adain@A`` (the decoder at α = A, default 1),
``gatys@N`` (N L-BFGS steps from the content) and ``adain+gatys@N`` (N steps from the AdaIN
output). The two baselines bound the losses: the identity keeps all of the content and none of
the style, the style image all of the style and none of the content, so the decoder is judged by
its losses as fractions of theirs (:data:`CONTENT_BAR`, :data:`STYLE_BAR`).

Every pair is read once, each method's output scored at once and only the grid's rows kept, so
memory does not grow with the number of pairs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from torch import Tensor
from tqdm import tqdm

from adain.core.checks import check_alpha
from adain.jobs.image import StyleCodes, stylize
from adain.media.image_io import save_image
from adain.model.style_transfer import StyleTransfer
from adain.vgg.encoder import VGG19Encoder
from gatys import DEFAULTS as GATYS
from gatys import stylize as gatys_stylize

from . import metrics
from .benchmark import IDENTITY_LABEL, QualityRow, _load_pairs, adain_label, gatys_label_for, mean_quality, pair_request
from .report import QUALITY_COLUMNS, markdown_table, tile_grid, write_text

KINDS = ("identity", "style", "adain", "gatys", "adain+gatys")
SPEC_HELP = "identity, style, adain[@ALPHA], gatys[@STEPS] or adain+gatys[@STEPS]"
# The default run: both baselines, the decoder at two strengths, Gatys from the content and from AdaIN.
DEFAULT_METHODS = ("identity", "style", "adain", "adain@0.5", "adain+gatys@50", "adain+gatys@100", "gatys@500")
CONTENT_BAR = 0.8  # the decoder's content loss may be at most this fraction of the style image's (as output)
STYLE_BAR = 0.2  # its AdaIN style loss at most this fraction of the identity's
SEED = 0  # Gatys' seed (only noise starts use it; fixed so runs repeat)
FILES = ("evaluation.md", "evaluation.json", "grid.jpg")
COLUMNS = {
    **{key: header for key, header in QUALITY_COLUMNS.items() if key != "size"},  # one size per run, in the header
    "content_vs_style": "content loss ÷ style image's",
    "style_vs_identity": "AdaIN style loss ÷ identity's",
}


@dataclass(frozen=True)
class Method:
    """One way of making an output from a content and a style image."""

    kind: str  # one of KINDS
    alpha: float = 1.0  # adain: style strength
    steps: int = 0  # gatys, adain+gatys: L-BFGS steps

    @property
    def spec(self) -> str:
        """The spec that gives this method, in its shortest form."""
        if self.kind == "adain":
            return "adain" if self.alpha == 1 else f"adain@{self.alpha:g}"
        return f"{self.kind}@{self.steps}" if self.steps else self.kind

    @property
    def needs_model(self) -> bool:
        """Whether it runs the AdaIN decoder."""
        return self.kind.startswith("adain")

    def label(self, precision: str) -> str:
        """How the report names it (AdaIN's ``precision`` included, as in the benchmark)."""
        if self.kind == "identity":
            return IDENTITY_LABEL
        if self.kind == "style":
            return "style image (output = style)"
        if self.kind == "adain":
            return adain_label(precision) + ("" if self.alpha == 1 else f", α {self.alpha:g}")
        return ("AdaIN → " if self.kind == "adain+gatys" else "") + gatys_label_for(self.steps)


def parse_methods(specs: Sequence[str]) -> list[Method]:
    """The methods of ``specs`` (see the module's docstring), in order; ValueError naming the first bad
    or repeated spec. ``gatys`` and ``adain+gatys`` without ``@N`` take Gatys' default steps."""
    methods: list[Method] = []
    for spec in specs:
        kind, at, value = spec.partition("@")
        try:
            if kind not in KINDS:
                raise ValueError(f"unknown method; give {SPEC_HELP}")
            if kind in ("identity", "style"):
                if at:
                    raise ValueError(f"{kind} takes no @ value")
                method = Method(kind)
            elif kind == "adain":
                alpha = float(value) if at else 1.0
                check_alpha(alpha)
                method = Method(kind, alpha=alpha)
            else:
                steps = int(value) if at else GATYS.steps
                if steps < 1:
                    raise ValueError(f"steps must be >= 1, got {steps}")
                method = Method(kind, steps=steps)
        except ValueError as err:
            raise ValueError(f"method {spec!r}: {err}") from None
        if method in methods:
            raise ValueError(f"method {spec!r} is given twice (as {method.spec})")
        methods.append(method)
    return methods


@dataclass
class Setup:
    """What to evaluate: image pairs (paths), their square size, the methods, and the grid."""

    pairs: list[tuple[Path, Path]]
    size: int  # px: shorter side of content and style, then centre-cropped to a square
    methods: list[Method]
    grid_methods: list[Method]  # the grid's columns after content and style, each among ``methods``
    grid_rows: int  # the first pairs, one per row
    progress: bool = True


@dataclass
class EvaluationRow(QualityRow):
    """A method's mean losses, and the two ratios issue 12's bar is judged on (None: baseline not run)."""

    spec: str
    content_vs_style: float | None  # content loss ÷ the style image's as output (bar: ≤ CONTENT_BAR)
    style_vs_identity: float | None  # AdaIN style loss ÷ the identity's (bar: ≤ STYLE_BAR)


@dataclass
class Evaluation:
    """Every method's losses on every pair (in ``setup.pairs`` order), and the grid's tiles."""

    setup: Setup
    labels: dict[Method, str]
    scores: dict[Method, list[metrics.Quality]]
    grid: list[list[Tensor]] = field(default_factory=list)  # per row: content, style, the grid methods' outputs

    def rows(self) -> list[EvaluationRow]:
        """One row per method, in the order given, with the means over the pairs and the ratios."""
        means = {m: mean_quality(self.labels[m], self.setup.size, s) for m, s in self.scores.items()}
        style_out, identity = means.get(Method("style")), means.get(Method("identity"))
        return [
            EvaluationRow(
                **asdict(row),
                spec=m.spec,
                content_vs_style=_ratio(row.content_loss, style_out.content_loss if style_out else None),
                style_vs_identity=_ratio(row.adain_style_loss, identity.adain_style_loss if identity else None),
            )
            for m, row in means.items()
        ]


def _ratio(value: float, base: float | None) -> float | None:
    """``value / base``, or None without a (non-zero) base."""
    return value / base if base else None


def evaluate(setup: Setup, encoder: VGG19Encoder, model: StyleTransfer | None) -> Evaluation:
    """Run every method on every pair and score each output on :func:`metrics.evaluation_encoder`.

    ``encoder`` is the one Gatys optimises on (the model's, when there is one); ``model`` is needed
    by the AdaIN methods, whose outputs go through :func:`adain.jobs.image.stylize` as every tool's do.
    """
    if model is None and any(m.needs_model for m in setup.methods):
        raise ValueError("the AdaIN methods need a decoder")
    device = encoder.preprocess.weight.device
    evaluator = metrics.evaluation_encoder().to(device)
    precision = model.precision if model is not None else "fp32"  # only AdaIN labels show it, and they have a model
    result = Evaluation(setup, {m: m.label(precision) for m in setup.methods}, {m: [] for m in setup.methods})
    codes = StyleCodes()  # each style encoded once for all its AdaIN outputs
    bar = tqdm(total=len(setup.pairs) * len(setup.methods), desc="evaluate", unit="output", disable=not setup.progress)
    for i, pair in enumerate(setup.pairs):
        (content,), (style,) = _load_pairs([pair], setup.size, device)
        outputs: dict[Method, Tensor] = {}
        for method in setup.methods:
            bar.set_postfix_str(f"pair {i + 1}, {method.spec}")
            outputs[method] = _output(method, pair, content, style, setup.size, encoder, model, codes)
            result.scores[method].append(metrics.quality(evaluator, outputs[method], content, style))
            bar.update()
        if i < setup.grid_rows:
            result.grid.append([t.cpu() for t in (content, style, *(outputs[m] for m in setup.grid_methods))])
    bar.close()
    return result


def _output(
    method: Method,
    pair: tuple[Path, Path],
    content: Tensor,
    style: Tensor,
    size: int,
    encoder: VGG19Encoder,
    model: StyleTransfer | None,
    codes: StyleCodes,
) -> Tensor:
    """``method``'s output for one pair (``content`` and ``style``: the pair read at ``size``, both size×size)."""
    if method.kind == "identity":
        return content
    if method.kind == "style":
        return style  # already the content's size: both are square crops of one size
    if method.kind == "adain":
        return stylize(model, pair_request(pair, size, method.alpha), codes).rgb.to(content.device)
    init = "adain" if method.kind == "adain+gatys" else "content"
    config = replace(GATYS, steps=method.steps, init=init)
    return gatys_stylize(content, style, config, encoder=encoder, adain_model=model, seed=SEED, progress=False).image


def markdown(meta: Mapping[str, object], result: Evaluation) -> str:
    """The report: how it was measured, the table of mean losses with the bar's ratios, and the grid's layout."""
    setup = result.setup
    columns = " | ".join(["content", "style", *(result.labels[m] for m in setup.grid_methods)])
    lines = [
        "# Evaluation",
        "",
        (
            f"{meta['date']} · {meta['device_name']} · torch {meta['torch']} · AdaIN precision {meta['precision']} · "
            f"{len(setup.pairs)} content/style pairs (content i with style i, each list cycled) from `{meta['content']}` "
            f"({meta['contents']} images) and `{meta['style']}` ({meta['styles']} images), each resized to a shorter side "
            f"of {setup.size} px and centre-cropped to {setup.size}×{setup.size} · Gatys: L-BFGS, its defaults otherwise, seed {SEED}"
        ),
        "",
        f"Decoder: `{meta['decoder']}` ({meta['decoder_note']}), encoder `{meta['encoder']}`."
        if meta["decoder"] is not None
        else "Decoder: none (no method given uses one).",
        "",
        *(f"Left out, unreadable: {reason}." for reason in meta.get("skipped", [])),
        *([""] if meta.get("skipped") else []),
        "## Losses (mean over the pairs; lower is better)",
        "",
        (
            f"Measured on the `{metrics.EVALUATION_VGG}` encoder (fixed, whatever `--vgg` the model uses): content loss, "
            "MSE of relu4_1, output against content; AdaIN style loss, Σ over relu1_1…relu4_1 of the MSEs of channel "
            f"means and stds, output against style; Gram style loss, Gatys' at {', '.join(metrics.GRAM_STYLE_LAYERS)}."
        ),
        "",
        *markdown_table(COLUMNS, result.rows()),
        "",
        (
            f"The bar for the shipped decoder: content loss ≤ {CONTENT_BAR:g}× the style image's as output "
            f"(first ratio ≤ {CONTENT_BAR:g}) and AdaIN style loss ≤ the identity's / {1 / STYLE_BAR:g} "
            f"(second ratio ≤ {STYLE_BAR:g})."
        ),
        "",
        f"`grid.jpg`: the first {len(result.grid)} pairs, one per row: {columns}.",
        "",
    ]
    return "\n".join(lines)


def payload(meta: Mapping[str, object], result: Evaluation) -> dict[str, object]:
    """The JSON report: ``meta``, and per method its means, ratios and per-pair losses (in ``meta["pair_names"]`` order)."""
    methods = [
        {**asdict(row), "per_pair": [asdict(q) for q in result.scores[m]]}
        for m, row in zip(result.scores, result.rows())
    ]  # fmt: skip
    return {"meta": dict(meta), "methods": methods}


def write(out_dir: Path, meta: Mapping[str, object], result: Evaluation) -> list[Path]:
    """Write :data:`FILES` to ``out_dir``, each atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js, img = (out_dir / name for name in FILES)
    write_text(md, markdown(meta, result))
    write_text(js, json.dumps(payload(meta, result), indent=2) + "\n")
    save_image(tile_grid(result.grid), img)
    return [md, js, img]
