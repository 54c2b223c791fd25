"""`scanner train`, `classify`, `adapt` and `evaluate`: detectors on feature stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from scanner.cli import options
from scanner.cli.app import command
from scanner.constants import ExitCode
from scanner.errors import InputError

if TYPE_CHECKING:
    from scanner.detect import Model, Samples

# classify lists every file when the batch is this small, and only the counts above it.
LIST_FILES_UP_TO = 50


def _samples(stores: list[Path], labels: Path | None = None) -> Samples:
    from scanner.detect import read_labels_csv, samples_of
    from scanner.store import read_features

    return samples_of([read_features(p) for p in stores], read_labels_csv(labels) if labels else None)


def _save(model: Model, out: Path, inputs: list[Path | None]) -> None:
    model.save(out, inputs=inputs)
    typer.echo(f"model: {out} ({model.describe()})")


def _weight(class_weight: str) -> str | None:
    return None if class_weight == "none" else class_weight


@command("train", "Detect")
def train(
    stores: options.StoresArgument,
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
    standardise: Annotated[
        bool | None,
        typer.Option(
            "--standardise/--no-standardise",
            help="Standardise each feature inside the model (svm, logistic; default: yes, except the paper's "
            "SVM on its six features).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fit a detector on feature stores and save it as a model file (SVM, logistic: labelled rows; GMM: no labels)."""
    from scanner.detect import train as fit

    samples = _samples(stores, labels)
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
        standardise=standardise,
    )
    for note in trained.notes:
        typer.echo(note, err=True)
    typer.echo(trained.summary)
    _save(trained.model, out, [*stores, *(real_anchor or []), labels])
    raise typer.Exit(ExitCode.SOME_UNUSABLE if samples.counts()["unusable"] else ExitCode.OK)


@command("classify", "Detect")
def classify(
    store: Annotated[
        Path,
        typer.Argument(help="Feature store (.h5) written by scanner scan.", metavar="FEATURES.h5", show_default=False),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Verdicts CSV to write: path, status, verdict, score.",
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
    real_anchor: options.RealAnchor = None,
    seed: options.Seed = 0,
) -> None:
    """Give every file of a feature store a verdict (real, fake, or none) and a score (higher: more likely fake)."""
    import numpy as np

    from scanner.detect import classify as judge
    from scanner.detect import load_model, write_verdicts

    if unsupervised and model is not None:
        raise InputError("give either --model or --unsupervised, not both")
    samples = _samples([store])
    loaded = load_model(model) if model is not None else None  # None: the bundled model of the store's set
    try:
        verdicts = judge(
            samples,
            loaded,
            unsupervised=unsupervised,
            anchors=[str(p) for p in real_anchor or []],
            seed=seed,
            model_name=str(model or "bundled default"),
        )
    except InputError as exc:
        raise InputError(f"{store}: {exc}" if not unsupervised else str(exc)) from None
    for note in verdicts.notes:
        typer.echo(note, err=True)
    to_stderr = str(out) == "-"  # the data goes to standard output: the words go to stderr
    typer.echo(f"model: {verdicts.model}", err=to_stderr)
    write_verdicts(
        out,
        verdicts.paths,
        verdicts.status,
        verdicts.verdict,
        verdicts.score,
        inputs=[store, model, *(real_anchor or [])],
    )
    if len(verdicts.score) <= LIST_FILES_UP_TO:
        width = max((len(p) for p in verdicts.paths), default=4)
        typer.echo(f"{'verdict':<8}  {'score':>9}  {'path':<{width}}  status", err=to_stderr)
        for path, status, verdict, score in zip(
            verdicts.paths, verdicts.status, verdicts.verdict, verdicts.score, strict=True
        ):
            shown = "-" if np.isnan(score) else f"{score:9.4f}"
            typer.echo(f"{verdict or '-':<8}  {shown:>9}  {path:<{width}}  {status}", err=to_stderr)
    counts = verdicts.counts()
    typer.echo(
        f"{counts['fake']} fake, {counts['real']} real, {counts['none']} without a verdict (unusable); verdicts: {out}",
        err=to_stderr,
    )
    raise typer.Exit(ExitCode.SOME_UNUSABLE if counts["none"] else ExitCode.OK)


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
) -> None:
    """Train an SVM on a source domain for use on a target domain (the paper's Algorithm 1)."""
    from scanner.detect import adapt as adapt_domains
    from scanner.detect import left_out

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
    typer.echo(f"source: {source_counts['real']} real, {source_counts['fake']} fake rows; {left_out(source_counts)}")
    typer.echo(f"target: {int(target_samples.usable.sum())} rows; {left_out(target_counts, unlabelled=False)}")
    _save(adapted.model, out, [source, target, labels])
    typer.echo(f"classify only {target}'s domain with it: it rescales features by that domain's mixture means")
    raise typer.Exit(ExitCode.SOME_UNUSABLE if source_counts["unusable"] or target_counts["unusable"] else ExitCode.OK)


@command("evaluate", "Detect")
def evaluate(
    stores: Annotated[
        list[Path],
        typer.Argument(
            help="Labelled feature stores, one per set; each is named after its file.",
            metavar="SET.h5",
            show_default=False,
        ),
    ],
    protocol: Annotated[
        Literal["all", "binary", "few-fakes", "adaptation"],
        typer.Option(
            "--protocol",
            help="binary: GMM and SVM (Table 2); few-fakes: SVM with 50/25/5/1 % fakes (Table 3); "
            "adaptation: every source -> target pair (Table 4).",
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
    from scanner.evaluate import PROTOCOLS, markdown
    from scanner.evaluate import evaluate as run_protocols

    named = [(p.name.removesuffix(".h5"), _samples([p], labels)) for p in stores]
    chosen: tuple[str, ...] = PROTOCOLS if protocol == "all" else (protocol,)
    if protocol == "all" and len(stores) < 2:
        chosen = tuple(p for p in PROTOCOLS if p != "adaptation")
    result = run_protocols(named, chosen, test_size=test_size, seed=seed)
    typer.echo(json.dumps(result, indent=2) if as_json else markdown(result), nl=as_json)
