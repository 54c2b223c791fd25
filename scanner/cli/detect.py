"""`scanner train`, `classify`, `adapt` and `evaluate`: detectors on feature stores."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from scanner.cli import options
from scanner.cli.base import command
from scanner.cli.text import chatter, say
from scanner.core.constants import DEFAULT_LIMITS, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ExitCode, ReadLimits
from scanner.core.errors import InputError
from scanner.images.limits import use_pixel_cap

if TYPE_CHECKING:
    import numpy as np

    from scanner.core.schema import Measurement
    from scanner.detect.model import Model
    from scanner.detect.samples import Samples
    from scanner.detect.workflows import Verdicts

InputsArgument = Annotated[
    list[Path],
    typer.Argument(
        help="Feature stores (.h5) written by scanner scan, or image files and directories, measured now "
        "(a few hundred images at most: scan more).",
        metavar="FEATURES.h5|IMAGE...",
        show_default=False,
    ),
]

# classify lists every file when the batch is this small, and only the counts above it.
LIST_FILES_UP_TO = 50

AcceptUncertainSide = Annotated[
    bool,
    typer.Option(
        "--accept-uncertain-side",
        help="Go on when the --real-anchor images do not settle the mixture's side (binomial p above 0.01; "
        "docs/detectors.md), with a warning, instead of refusing.",
        rich_help_panel="Mixture side",
    ),
]


def _samples(stores: list[Path], labels: Path | None = None) -> Samples:
    from scanner.detect.labels import read_labels_csv
    from scanner.detect.samples import samples_of
    from scanner.store.hdf5 import read_features

    return samples_of([read_features(p) for p in stores], read_labels_csv(labels) if labels else None)


def _input_samples(
    inputs: list[Path],
    measurement: Measurement | None = None,
    labels: Path | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> Samples:
    """Samples of feature stores and of images measured now (as `measurement`, else as the first store was)."""
    from scanner.core.schema import Measurement
    from scanner.detect.inputs import feature_tables, is_store
    from scanner.detect.labels import read_labels_csv
    from scanner.detect.samples import samples_of
    from scanner.store.hdf5 import read_header

    if measurement is None:
        stores = [p for p in inputs if is_store(p)]
        measurement = read_header(stores[0]).measurement if stores else Measurement()
    return samples_of(feature_tables(inputs, measurement, limits=limits), read_labels_csv(labels) if labels else None)


def shown_path(path: str) -> str:
    """A path as the user reads it: relative to the working directory when it lies under it."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def _tell(to_stderr: bool) -> Callable[[str], None]:
    """Print words for people (made safe for a terminal; none under --quiet) to stdout, or to stderr when
    the command's data goes to stdout."""
    return lambda text: chatter(text, err=to_stderr)


def _save(model: Model, out: Path, inputs: list[Path | None]) -> None:
    model.save(out, inputs=inputs)
    to_stdout = str(out) == "-"  # "wrote the model to ..." here, "model: ..." where classify uses one
    chatter(f"wrote the model to {'standard output' if to_stdout else out}: {model.describe()}", err=to_stdout)


def _weight(class_weight: str) -> str | None:
    return None if class_weight == "none" else class_weight


def _calibration_lines(samples: Samples, rows: np.ndarray) -> list[str]:
    """The files a fit used, with their labels, when there are few enough to read."""
    import numpy as np

    used = np.flatnonzero(rows)
    if not len(used) or len(used) > LIST_FILES_UP_TO:
        return []
    labelled = (samples.labels[used] != "").any()
    lines = [f"trained on these {len(used)} files{' (labels from their folders)' if labelled else ''}:"]
    lines += sorted(f"  {samples.labels[i] or '-':<5} {shown_path(samples.paths[i])}" for i in used)
    return lines


@command("train", "Detect")
def train(
    stores: InputsArgument,
    out: options.ModelOut,
    method: Annotated[
        Literal["svm", "logistic", "gmm"] | None,
        typer.Option(
            "--method",
            help="svm: supervised RBF SVM; logistic: logistic regression; gmm: 2-component mixture, no labels "
            "(default: svm for the paper's features, logistic for the extended set).",
            show_default=False,
        ),
    ] = None,
    fake_fraction: Annotated[
        float | None,
        typer.Option(
            "--fake-fraction",
            min=0.0,
            max=1.0,
            show_default=False,
            help="Train on all reals and fakes subsampled to this share of the training set "
            "(the paper's 0.25, 0.05, 0.01).",
        ),
    ] = None,
    seed: options.Seed = 0,
    labels: options.Labels = None,
    c: options.C = 1.0,
    gamma: options.Gamma = "scale",
    class_weight: options.ClassWeight = "none",
    real_anchor: options.RealAnchor = None,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
    max_bytes: options.MaxBytes = DEFAULT_MAX_BYTES,
    strict: options.Strict = False,
    feature_set: options.ImagesFeatureSet = None,
    standardise: Annotated[
        bool | None,
        typer.Option(
            "--standardise/--no-standardise",
            help="Standardise each feature inside the model (svm, logistic; default: yes, except the paper's "
            "SVM on its six features).",
            show_default=False,
            rich_help_panel=options.FITTING,
        ),
    ] = None,
    accept_uncertain_side: AcceptUncertainSide = False,
) -> None:
    """Fit a detector on feature stores or images and save it as a model file (SVM, logistic: labelled rows;
    GMM: no labels)."""
    use_pixel_cap(max_pixels)  # images and real anchors may be read
    from scanner.core.schema import Measurement
    from scanner.detect.workflows import train as fit

    measurement = Measurement(feature_set=feature_set) if feature_set else None
    samples = _input_samples(stores, measurement, labels=labels, limits=ReadLimits(max_pixels, max_bytes))
    tell = _tell(str(out) == "-")
    trained = fit(
        samples,
        method=method,
        fake_fraction=fake_fraction,
        seed=seed,
        C=c,
        gamma=gamma,
        class_weight=_weight(class_weight),
        anchors=[str(p) for p in real_anchor or []],
        provenance={"command": "train", "stores": [str(p) for p in stores]},
        limits=ReadLimits(max_pixels, max_bytes),
        standardise=standardise,
        accept_uncertain_side=accept_uncertain_side,
    )
    for note in trained.notes:
        say(note, err=True)
    tell(trained.summary)
    for line in _calibration_lines(samples, samples.labelled if method == "svm" else samples.usable):
        tell(line)
    _save(trained.model, out, [*stores, *(real_anchor or []), labels])
    raise typer.Exit(ExitCode.SOME_UNUSABLE if strict and samples.counts()["unusable"] else ExitCode.OK)


@command("classify", "Detect")
def classify(
    inputs: InputsArgument,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Verdicts file to write: CSV, or JSONL or Parquet by its suffix (.jsonl, .parquet; '-': CSV on "
            "stdout): path, status, verdict, score, threshold, probability, the file's SHA-256, and on every "
            "row the model, its SHA-256 and how the threshold was set.",
            metavar="VERDICTS.csv",
            show_default=False,
        ),
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Model file (default: the bundled model of the store's feature set; see docs/detectors.md).",
            metavar="MODEL.h5",
            show_default=False,
        ),
    ] = None,
    unsupervised: Annotated[
        bool,
        typer.Option("--unsupervised", help="Fit a 2-component mixture on this batch itself: nothing labelled needed."),
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            metavar="T",
            show_default=False,
            help="Call a file fake when its score is above T (default 0, the model's own boundary).",
        ),
    ] = None,
    fpr: Annotated[
        float | None,
        typer.Option(
            "--fpr",
            metavar="RATE",
            min=0.0,
            max=1.0,
            show_default=False,
            help="Choose the threshold that calls at most this share of the --real-anchor images fake "
            "(0.05: at most 5 %).",
        ),
    ] = None,
    real_anchor: Annotated[
        list[Path] | None,
        typer.Option(
            "--real-anchor",
            help="Known-real images, or directories of them (repeatable): they set the threshold with --fpr, "
            "and pick the mixture's real side with --unsupervised.",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    seed: options.Seed = 0,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
    max_bytes: options.MaxBytes = DEFAULT_MAX_BYTES,
    strict: options.Strict = False,
    accept_uncertain_side: AcceptUncertainSide = False,
) -> None:
    """Give every file a verdict (real, fake, or none) and a score (higher: more likely fake): the files of
    feature stores, or images measured now."""
    use_pixel_cap(max_pixels)  # images and real anchors may be read
    import numpy as np

    from scanner.detect.inputs import is_store
    from scanner.detect.labels import label_from_path
    from scanner.detect.model import load_model
    from scanner.detect.verdicts import disagreement_line, write_verdicts
    from scanner.detect.workflows import judge
    from scanner.features.notice import install_compile_notice

    if unsupervised and model is not None:
        raise InputError("give either --model or --unsupervised, not both")
    install_compile_notice()  # scoring compiles a kernel on a first run too
    loaded = load_model(model) if model is not None else None  # None: the bundled model of the inputs' set
    measure_as = loaded.measurement if loaded is not None else None
    if measure_as is None and not unsupervised and not any(is_store(p) for p in inputs):
        measure_as = load_model(None).measurement  # images alone: measured as the bundled default model needs
    samples = _input_samples(inputs, measure_as, limits=ReadLimits(max_pixels, max_bytes))
    named = str(inputs[0]) if len(inputs) == 1 else f"{len(inputs)} inputs"
    try:
        verdicts, _ = judge(
            samples,
            loaded,
            unsupervised=unsupervised,
            anchors=[str(p) for p in real_anchor or []],
            seed=seed,
            model_name=str(model or "bundled default"),
            threshold=threshold,
            fpr=fpr,
            limits=ReadLimits(max_pixels, max_bytes),
            accept_uncertain_side=accept_uncertain_side,
        )
    except InputError as exc:
        raise InputError(f"{named}: {exc}" if not unsupervised else str(exc)) from None
    for note in verdicts.notes:
        say(note, err=True)
    tell = _tell(str(out) == "-")  # the data goes to standard output: the words go to stderr
    tell(f"model: {verdicts.model}")
    write_verdicts(
        out,
        verdicts.paths,
        verdicts.status,
        verdicts.verdict,
        verdicts.score,
        inputs=[*inputs, model, *(real_anchor or [])],
        threshold=verdicts.threshold,
        probability=verdicts.probability,
        provenance=verdicts.provenance,
        sha256=verdicts.sha256,
        declared=verdicts.declared,
    )
    labels = np.array([label_from_path(p) for p in verdicts.paths], dtype=object)
    if len(verdicts.score) <= LIST_FILES_UP_TO:
        for line in _verdict_table(verdicts, labels):
            tell(line)
    counts = verdicts.counts()
    at = f" (score above {verdicts.threshold:.6g})" if verdicts.threshold else ""
    tell(
        f"{counts['fake']} fake{at}, {counts['real']} real, {counts['none']} without a verdict (unusable); "
        f"verdicts: {out}"
    )
    judged = np.isin(verdicts.verdict, ("real", "fake")) & (labels != "")
    if judged.any():
        right = int(np.sum(verdicts.verdict[judged] == labels[judged]))
        tell(f"{right} of {int(judged.sum())} verdicts agree with the folders' labels (real/, fake/)")
    if verdicts.declared is not None:
        disagreeing = disagreement_line(verdicts.paths, verdicts.verdict, verdicts.declared, shown_path)
        if disagreeing:
            tell(disagreeing)
    raise typer.Exit(ExitCode.SOME_UNUSABLE if strict and counts["none"] else ExitCode.OK)


def _verdict_table(verdicts: Verdicts, labels: np.ndarray) -> list[str]:
    """One line per file: verdict, score, probability (where the model gives one), label (where the path has
    one), path and status, then what the file declares (where some file declares something)."""
    import numpy as np

    from scanner.detect.verdicts import verdict_order

    paths = [shown_path(p) for p in verdicts.paths]
    width = max((len(p) for p in paths), default=4)
    chance = verdicts.probability
    with_labels = (labels != "").any()
    head = f"{'verdict':<8}  {'score':>9}" + ("  p(fake)" if chance is not None else "")
    head += "  label" if with_labels else ""
    declared = verdicts.declared if verdicts.declared is not None and any(verdicts.declared) else None
    status_width = max((len(str(s)) for s in verdicts.status), default=6) if declared is not None else 0
    lines = [f"{head}  {'path':<{width}}  {'status':<{status_width}}" + ("  declared" if declared is not None else "")]
    for i in verdict_order(verdicts.paths):  # the order of the verdicts file
        path = paths[i]
        score = verdicts.score[i]
        line = f"{verdicts.verdict[i] or '-':<8}  {'-' if np.isnan(score) else f'{score:9.4f}':>9}"
        if chance is not None:
            line += f"  {'-' if np.isnan(chance[i]) else f'{chance[i]:7.3f}':>7}"
        if with_labels:
            line += f"  {labels[i] or '-':<5}"
        tail = f"  {declared[i] or '-'}" if declared is not None else ""
        lines.append(f"{line}  {path:<{width}}  {verdicts.status[i]:<{status_width}}{tail}".rstrip())
    return lines


@command("adapt", "Detect")
def adapt(
    source: Annotated[
        Path, typer.Option("--source", help="Labelled feature store of the source domain.", show_default=False)
    ],
    target: Annotated[
        Path, typer.Option("--target", help="Feature store of the target domain (labels unused).", show_default=False)
    ],
    out: options.ModelOut,
    seed: options.Seed = 0,
    labels: options.Labels = None,
    c: options.C = 1.0,
    gamma: options.Gamma = "scale",
    class_weight: options.ClassWeight = "none",
    strict: options.Strict = False,
) -> None:
    """Train an SVM on a source domain for use on a target domain (the paper's Algorithm 1)."""
    from scanner.detect.fit import adapt as adapt_domains
    from scanner.detect.workflows import left_out

    source_samples = _samples([source], labels)
    target_samples = _samples([target])
    if source_samples.spectrum != target_samples.spectrum:
        raise InputError(
            f"the source holds {source_samples.spectrum!r}-spectrum features and the target "
            f"{target_samples.spectrum!r}; use one mode"
        )
    if source_samples.measurement.feature_set != target_samples.measurement.feature_set:
        raise InputError("the source and the target hold features of different sets; use one set")
    rows = source_samples.labelled
    weight = _weight(class_weight)
    provenance = {
        "command": "adapt",
        "method": "svm",
        "source": str(source),
        "target": str(target),
        "seed": seed,
        "C": c,
        "class_weight": weight,
    }
    adapted = adapt_domains(
        source_samples.features[rows],
        source_samples.is_fake[rows],
        target_samples.features[target_samples.usable],
        measurement=source_samples.measurement,
        seed=seed,
        C=c,
        gamma=gamma,
        class_weight=weight,
        provenance=provenance,
    )
    source_counts, target_counts = source_samples.counts(), target_samples.counts()
    tell = _tell(str(out) == "-")
    tell(f"source: {source_counts['real']} real, {source_counts['fake']} fake rows; {left_out(source_counts)}")
    tell(f"target: {int(target_samples.usable.sum())} rows; {left_out(target_counts, unlabelled=False)}")
    _save(adapted.model, out, [source, target, labels])
    tell(f"classify only {target}'s domain with it: it rescales features by that domain's mixture means")
    unusable = source_counts["unusable"] or target_counts["unusable"]
    raise typer.Exit(ExitCode.SOME_UNUSABLE if strict and unusable else ExitCode.OK)


@command("evaluate", "Detect")
def evaluate(
    stores: Annotated[
        list[Path],
        typer.Argument(
            help="Labelled feature stores, one per set; each is named after its file.",
            metavar="SET.h5...",
            show_default=False,
        ),
    ],
    protocol: Annotated[
        Literal["all", "binary", "few-fakes", "adaptation"],
        typer.Option(
            "--protocol",
            help="all: the three below; binary: GMM and SVM (Table 2); few-fakes: SVM with 50/25/5/1 % fakes "
            "(Table 3); adaptation: every source -> target pair (Table 4).",
        ),
    ] = "all",
    test_size: Annotated[
        float,
        typer.Option("--test-size", min=0.0, max=1.0, help="Share of each set held out for testing (stratified)."),
    ] = 0.5,
    seed: options.Seed = 0,
    labels: options.Labels = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of Markdown.")] = False,
) -> None:
    """Run the paper's evaluation protocols on labelled sets, seeded so that a run repeats exactly."""
    from scanner.detect.evaluate import PROTOCOLS, markdown
    from scanner.detect.evaluate import evaluate as run_protocols

    named = [(p.name.removesuffix(".h5"), _samples([p], labels)) for p in stores]
    chosen: tuple[str, ...] = PROTOCOLS if protocol == "all" else (protocol,)
    if protocol == "all" and len(stores) < 2:
        chosen = tuple(p for p in PROTOCOLS if p != "adaptation")
    result = run_protocols(named, chosen, test_size=test_size, seed=seed)
    say(json.dumps(result, indent=2) if as_json else markdown(result), nl=as_json)
