"""The `scanner` command line: a thin typer layer over the library.

Exit codes (every command):
  0  done, every file usable
  1  done, but some files could not be used (each is reported with a reason)
  2  usage error (bad option or argument)
  3  fatal error (for example an output that cannot be written)
"""

from __future__ import annotations

import json
import math
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from scanner import __version__
from scanner.decode import DEFAULT_MAX_PIXELS
from scanner.features import FEATURE_NAMES, FeatureExtractor, FileFeatures, features_of_file
from scanner.progress import ScanDisplay
from scanner.scan import ScanError, ScanOptions, ScanSummary, StoreMismatch, journal_path
from scanner.scan import scan as run_scan
from scanner.spectrum import PLANNER_EFFORTS
from scanner.store import StoreError, column_counts, export_csv, read_attrs, store_length
from scanner.walk import Walk, parse_extensions

EXIT_OK = 0
EXIT_SOME_UNUSABLE = 1
EXIT_USAGE = 2
EXIT_FATAL = 3

app = typer.Typer(
    name="scanner",
    help="Find GAN-generated face images by the asynchrony of their colour spectra (Le & Woo, 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Spectrum(str, Enum):
    log = "log"
    modulus = "modulus"


Planner = Enum("Planner", {name: name for name in PLANNER_EFFORTS}, type=str)

SpectrumOption = Annotated[
    Spectrum,
    typer.Option("--spectrum", help="log: the authors' released pipeline (default); modulus: eq. 5 literally."),
]
PlannerOption = Annotated[
    Planner,
    typer.Option("--planner", help="FFTW planner effort; plans and wisdom are cached per machine."),
]
MaxPixelsOption = Annotated[
    int, typer.Option("--max-pixels", min=1, help="Refuse images larger than this (decompression bombs).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scanner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Find GAN-generated face images by the asynchrony of their colour spectra (Le & Woo, 2021)."""


def _json_number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _feature_record(result: FileFeatures) -> dict:
    record = {
        "path": result.path,
        "status": result.status,
        "error": result.error or None,
        "height": result.info.height,
        "width": result.info.width,
    }
    values = result.features if result.features is not None else [math.nan] * len(FEATURE_NAMES)
    record.update({name: _json_number(v) for name, v in zip(FEATURE_NAMES, values)})
    return record


def _feature_row(result: FileFeatures, width: int) -> str:
    size = f"{result.info.width}x{result.info.height}" if result.info.width else "-"
    head = f"{result.path:<{width}}  {result.status:<10}  {size:>9}"
    if result.features is None:
        return f"{head}  {result.error}"
    return head + "".join(f"  {v:>9.6f}" for v in result.features)


def _fail(command: str, message: str, code: int = EXIT_USAGE):
    """Say what went wrong, as `scanner COMMAND: message` on stderr, and exit with code."""
    typer.echo(f"scanner {command}: {message}", err=True)
    raise typer.Exit(code)


def _load_model_or_exit(command: str, path: Path | None):
    """A model for verdicts (None: the bundled default); a bad file is a usage error."""
    from scanner.detect import ModelError, load_model

    try:
        return load_model(path)
    except ModelError as exc:
        _fail(command, str(exc))


# --- features ---------------------------------------------------------------


@app.command()
def features(
    images: Annotated[list[Path], typer.Argument(help="Image files to measure.", show_default=False)],
    spectrum: SpectrumOption = Spectrum.log,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    planner: PlannerOption = Planner.measure,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Print the six features of a few images: a quick look before a sweep."""
    extractor = FeatureExtractor(spectrum.value, planner=planner.value)
    width = max(len(str(p)) for p in images)
    if not as_json:
        typer.echo(f"{'path':<{width}}  {'status':<10}  {'size':>9}" + "".join(f"  {n:>9}" for n in FEATURE_NAMES))
    unusable = 0
    for path in images:
        result = features_of_file(path, extractor, max_pixels)
        unusable += result.status != "ok"
        if as_json:
            typer.echo(json.dumps(_feature_record(result)))
        else:
            typer.echo(_feature_row(result, width))
    raise typer.Exit(EXIT_SOME_UNUSABLE if unusable else EXIT_OK)


# --- scan, export, info -----------------------------------------------------


def _counts_lines(counts: dict[str, int]) -> list[str]:
    return [f"  {status:<11} {n:>12,}" for status, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))]


def _summary(summary: ScanSummary, counts: dict[str, int]) -> str:
    skipped = f"; {summary.skipped:,} already in the store" if summary.skipped else ""
    lines = [
        f"scanned {summary.written:,} files in {summary.elapsed:,.1f} s "
        f"({summary.images_per_second:,.0f} images/s, {summary.workers} workers){skipped}",
        f"{summary.out}: {summary.store_rows:,} rows",
    ]
    return "\n".join(lines + _counts_lines(counts))


def _list_lines(path: Path):
    """Lines of a list file (or stdin for '-'), as bytes so any file name survives."""
    handle = sys.stdin.buffer if str(path) == "-" else open(path, "rb")
    with handle:
        yield from handle


@app.command()
def scan(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Directories and files to scan.", metavar="PATH", show_default=False)
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="The HDF5 feature store to write (resumed if it exists).", metavar="FEATURES.h5"
        ),
    ] = ...,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1, metavar="N", help="Worker processes (default: the cores this process may use)."
        ),
    ] = None,
    spectrum: SpectrumOption = Spectrum.log,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into subdirectories.")] = True,
    ext: Annotated[
        str | None,
        typer.Option(
            "--ext",
            metavar="EXT,...",
            help="Extensions to take from directories, e.g. jpg,png ('*': every file; default: the common image extensions).",
        ),
    ] = None,
    from_list: Annotated[
        Path | None,
        typer.Option(
            "--from-list", metavar="FILE", help="Also scan the paths in this file, one per line ('-': stdin)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over instead of resuming.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary.")] = False,
    planner: PlannerOption = Planner.measure,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
    checkpoint_rows: Annotated[
        int,
        typer.Option(
            "--checkpoint-rows",
            min=1,
            metavar="N",
            help="Bring the store up to date after this many new rows (or as many as it holds, if more).",
        ),
    ] = 50_000,
) -> None:
    """Scan directories into a crash-safe, resumable HDF5 feature store."""
    paths = paths or []
    if not paths and from_list is None:
        _fail("scan", "nothing to scan: give directories or files, or --from-list FILE", EXIT_USAGE)
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if from_list is not None and str(from_list) != "-" and not from_list.is_file():
        missing.append(str(from_list))
    if missing:
        _fail("scan", f"no such file or directory: {', '.join(missing)}", EXIT_USAGE)
    try:
        extensions = parse_extensions(ext)
    except ValueError as exc:
        _fail("scan", str(exc), EXIT_USAGE)
    total = None
    if not paths and str(from_list) != "-":
        with open(from_list, "rb") as handle:
            total = sum(1 for line in handle if line.strip())
    walk = Walk(
        paths,
        recursive=recursive,
        extensions=extensions,
        from_list=_list_lines(from_list) if from_list is not None else None,
    )
    options = ScanOptions(
        spectrum=spectrum.value,
        planner=planner.value,
        max_pixels=max_pixels,
        workers=workers,
        overwrite=overwrite,
        checkpoint_rows=checkpoint_rows,
    )
    try:
        with ScanDisplay(quiet=quiet, total=total) as display:
            summary = run_scan(walk, out, options, ["scanner", *sys.argv[1:]], display.update, total)
        counts = column_counts(summary.out)
    except StoreMismatch as exc:
        _fail("scan", str(exc), EXIT_USAGE)
    except (ScanError, StoreError, OSError) as exc:
        _fail("scan", str(exc), EXIT_FATAL)
    if not quiet:
        typer.echo(_summary(summary, counts))
    if summary.interrupted:
        typer.echo("interrupted: what finished is in the store; run the same command again to go on", err=True)
        raise typer.Exit(130)
    raise typer.Exit(EXIT_SOME_UNUSABLE if any(s != "ok" for s in counts) else EXIT_OK)


@app.command()
def export(
    store: Annotated[
        Path,
        typer.Argument(help="A feature store written by `scanner scan`.", metavar="FEATURES.h5", show_default=False),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The CSV file to write ('-': stdout).", metavar="FILE.csv")
    ] = ...,
) -> None:
    """Write a feature store as CSV: path, status, error, height, width, format and the six features."""
    try:
        if str(out) == "-":
            sys.stdout.reconfigure(errors="surrogateescape")
            try:
                export_csv(store, sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:  # `scanner export ... | head` is fine
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        tmp = out.with_name(f".{out.name}.tmp")
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            export_csv(store, handle)
        os.replace(tmp, out)
    except StoreError as exc:
        _fail("export", str(exc), EXIT_USAGE)
    except OSError as exc:
        _fail("export", f"cannot write {out}: {exc.strerror or exc}", EXIT_FATAL)


@app.command()
def info(
    store: Annotated[
        Path,
        typer.Argument(help="A feature store written by `scanner scan`.", metavar="FEATURES.h5", show_default=False),
    ],
) -> None:
    """Describe a feature store: rows, counts per status, spectrum mode, versions, roots, command."""
    try:
        attrs = read_attrs(store)
        rows = store_length(store)
        counts = column_counts(store)
        formats = column_counts(store, "format")
    except StoreError as exc:
        _fail("info", str(exc), EXIT_USAGE)
    lines = [
        f"store:          {store}",
        f"rows:           {rows:,}",
        f"spectrum:       {attrs.get('spectrum')}",
        f"schema version: {attrs.get('schema_version')}",
        f"tool version:   {attrs.get('tool_version')}",
        f"created:        {attrs.get('created')}",
        f"updated:        {attrs.get('updated')}",
        f"command:        {attrs.get('command')}",
        "roots:          "
        + ", ".join(repr(r) if r else "'' (files named directly: absolute paths)" for r in attrs["roots"]),
        "formats:        " + ", ".join(f"{name or 'unknown'} {n:,}" for name, n in sorted(formats.items())),
        "status:",
        *_counts_lines(counts),
    ]
    if os.path.exists(journal_path(os.path.abspath(store))):
        lines.append("note: an unfinished scan's journal is next to it; rerun that scan to finish and merge it")
    typer.echo("\n".join(lines))


# --- train, classify, adapt, evaluate ---------------------------------------


class Method(str, Enum):
    svm = "svm"
    gmm = "gmm"


class ClassWeight(str, Enum):
    none = "none"
    balanced = "balanced"


class EvaluationProtocol(str, Enum):
    all = "all"
    binary = "binary"
    few_fakes = "few-fakes"
    adaptation = "adaptation"


StoresArgument = Annotated[
    list[Path],
    typer.Argument(help="Feature stores (.h5) written by scanner scan.", metavar="FEATURES.h5", show_default=False),
]
ModelOutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Model file to write (.h5).", metavar="MODEL.h5", show_default=False)
]
LabelsOption = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        help="CSV with columns path,label (real/fake or 0/1), used instead of labels from the paths "
        "(a directory named real, 0_real, fake or 1_fake).",
        metavar="CSV",
        show_default=False,
    ),
]
SeedOption = Annotated[
    int, typer.Option("--seed", help="Seed of every random step (mixture start, subsampling, splits).")
]
COption = Annotated[float, typer.Option("--C", help="SVM regularisation (the paper: scikit-learn's 1).")]
GammaOption = Annotated[
    str, typer.Option("--gamma", help="RBF gamma: scale (1 / (6 var X), the paper's), auto (1/6) or a number.")
]
ClassWeightOption = Annotated[
    ClassWeight, typer.Option("--class-weight", help="balanced: weigh classes inversely to their counts.")
]
RealAnchorOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--real-anchor",
        help="A known-real image or a directory of them (repeatable): the mixture component holding "
        "most of them is called real, instead of the paper's rule.",
        metavar="PATH",
        show_default=False,
    ),
]
# classify lists every file when the batch is this small, and only the counts above it.
_LIST_FILES_UP_TO = 50


def _samples_or_exit(command: str, stores: list[Path], labels: Path | None = None):
    from scanner.detect import DetectorError, read_labels_csv, samples_of
    from scanner.store import StoreError, read_features

    try:
        return samples_of([read_features(p) for p in stores], read_labels_csv(labels) if labels else None)
    except (StoreError, DetectorError) as exc:
        _fail(command, str(exc))


def _save_model_or_exit(command: str, model, out: Path) -> None:
    try:
        model.save(out)
    except OSError as exc:
        _fail(command, f"cannot write {out}: {exc.strerror or exc}", EXIT_FATAL)
    typer.echo(f"model: {out} ({model.describe()})")


def _left_out(counts: dict, *, unlabelled: bool = True) -> str:
    parts = [f"{counts['unusable']} unusable (status not ok, or a NaN feature)"]
    if unlabelled:
        parts.append(f"{counts['unlabelled']} unlabelled")
    return "left out: " + ", ".join(parts)


@app.command()
def train(
    stores: StoresArgument,
    out: ModelOutOption,
    method: Annotated[
        Method, typer.Option("--method", help="svm: supervised RBF SVM; gmm: 2-component mixture, no labels.")
    ] = Method.svm,
    fake_fraction: Annotated[
        float | None,
        typer.Option(
            "--fake-fraction",
            min=0.0,
            max=1.0,
            help="Train on all reals and fakes subsampled to this share of the "
            "training set (the paper's 0.25, 0.05, 0.01).",
            show_default=False,
        ),
    ] = None,
    seed: SeedOption = 0,
    labels: LabelsOption = None,
    c: COption = 1.0,
    gamma: GammaOption = "scale",
    class_weight: ClassWeightOption = ClassWeight.none,
    real_anchor: RealAnchorOption = None,
) -> None:
    """Fit a detector on feature stores and save it as a model file (SVM: labelled rows; GMM: no labels)."""
    import numpy as np

    from scanner.detect import DetectorError, Model, fit_gmm_on, fit_svm, subsample_fakes

    samples = _samples_or_exit("train", stores, labels)
    counts = samples.counts()
    provenance = {"command": "train", "method": method.value, "stores": [str(p) for p in stores], "seed": seed}
    try:
        if method is Method.svm:
            if real_anchor:
                _fail("train", "--real-anchor chooses a mixture's side; it applies to --method gmm")
            rows = np.flatnonzero(samples.labelled)
            if fake_fraction is not None:
                rows = rows[subsample_fakes(samples.is_fake[rows], fake_fraction, seed)]
            weight = None if class_weight is ClassWeight.none else class_weight.value
            decision = fit_svm(samples.features[rows], samples.is_fake[rows], C=c, gamma=gamma, class_weight=weight)
            n_fake = int(samples.is_fake[rows].sum())
            provenance.update(
                real=len(rows) - n_fake,
                fake=n_fake,
                fake_fraction=fake_fraction,
                C=c,
                gamma=decision.gamma,
                class_weight=weight,
            )
            typer.echo(
                f"trained SVM on {len(rows)} rows ({len(rows) - n_fake} real, {n_fake} fake); " + _left_out(counts)
            )
        else:
            if fake_fraction is not None:
                _fail("train", "--fake-fraction subsamples labelled fakes; it applies to --method svm")
            fit, notes = fit_gmm_on(samples, seed=seed, anchors=[str(p) for p in real_anchor or []])
            decision = fit.decision
            provenance.update(rows=int(samples.usable.sum()), side_rule=fit.rule)
            for note in notes:
                typer.echo(note, err=True)
            typer.echo(
                f"fitted a 2-component mixture on {int(samples.usable.sum())} rows (fake side by "
                f"{'the paper' + chr(39) + 's rule' if fit.rule == 'paper' else 'the real anchors'}); "
                + _left_out(counts, unlabelled=False)
            )
    except DetectorError as exc:
        _fail("train", str(exc))
    _save_model_or_exit("train", Model(samples.spectrum, decision, provenance=provenance), out)
    raise typer.Exit(EXIT_SOME_UNUSABLE if counts["unusable"] else EXIT_OK)


@app.command()
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
            help="Model file (default: the bundled model; see the README).",
            metavar="MODEL.h5",
            show_default=False,
        ),
    ] = None,
    unsupervised: Annotated[
        bool,
        typer.Option("--unsupervised", help="Fit a 2-component mixture on this batch itself: nothing labelled needed."),
    ] = False,
    real_anchor: RealAnchorOption = None,
    seed: SeedOption = 0,
) -> None:
    """Give every file of a feature store a verdict (real, fake, or none when unusable) and a score (higher: more likely fake)."""
    import numpy as np

    from scanner.detect import FAKE, REAL, DetectorError, Model, fit_gmm_on, verdicts_of, write_verdicts

    if unsupervised and model is not None:
        _fail("classify", "give either --model or --unsupervised, not both")
    if real_anchor and not unsupervised:
        _fail("classify", "--real-anchor chooses a mixture's side; it applies to --unsupervised")
    samples = _samples_or_exit("classify", [store])
    usable = samples.usable
    if unsupervised:
        try:
            fit, notes = fit_gmm_on(samples, seed=seed, anchors=[str(p) for p in real_anchor or []])
        except DetectorError as exc:
            _fail("classify", str(exc))
        for note in notes:
            typer.echo(note, err=True)
        judge = Model(samples.spectrum, fit.decision)
        typer.echo(
            f"model: a 2-component mixture fitted on this batch ({int(usable.sum())} rows, fake side by "
            f"{'the paper' + chr(39) + 's rule' if fit.rule == 'paper' else 'the real anchors'})"
        )
    else:
        judge = _load_model_or_exit("classify", model)
        try:
            judge.check_spectrum(samples.spectrum)
        except DetectorError as exc:
            _fail("classify", f"{store}: {exc}")
        typer.echo(f"model: {model or 'bundled default'} ({judge.describe()})")
    scores = np.where(usable, judge.score(samples.features), np.nan)
    verdicts = verdicts_of(scores)
    try:
        write_verdicts(out, samples.paths, samples.status, verdicts, scores)
    except OSError as exc:
        _fail("classify", f"cannot write {out}: {exc.strerror or exc}", EXIT_FATAL)
    if len(scores) <= _LIST_FILES_UP_TO:
        width = max((len(p) for p in samples.paths), default=4)
        typer.echo(f"{'verdict':<8}  {'score':>9}  {'path':<{width}}  status")
        for path, status, verdict, score in zip(samples.paths, samples.status, verdicts, scores):
            shown = "-" if np.isnan(score) else f"{score:9.4f}"
            typer.echo(f"{verdict or '-':<8}  {shown:>9}  {path:<{width}}  {status}")
    counts = {name: int(np.sum(verdicts == value)) for name, value in (("fake", FAKE), ("real", REAL), ("none", ""))}
    typer.echo(
        f"{counts['fake']} fake, {counts['real']} real, {counts['none']} without a verdict (unusable); verdicts: {out}"
    )
    raise typer.Exit(EXIT_SOME_UNUSABLE if counts["none"] else EXIT_OK)


@app.command()
def adapt(
    source: Annotated[
        Path, typer.Option("--source", help="Labelled feature store of the source domain.", show_default=False)
    ],
    target: Annotated[
        Path, typer.Option("--target", help="Feature store of the target domain (labels unused).", show_default=False)
    ],
    out: ModelOutOption,
    seed: SeedOption = 0,
    labels: LabelsOption = None,
    c: COption = 1.0,
    gamma: GammaOption = "scale",
    class_weight: ClassWeightOption = ClassWeight.none,
) -> None:
    """Train an SVM on the source domain for the target domain (the paper's Algorithm 1); the model is for target-domain files."""
    from scanner.detect import DetectorError
    from scanner.detect import adapt as adapt_domains

    source_samples = _samples_or_exit("adapt", [source], labels)
    target_samples = _samples_or_exit("adapt", [target])
    if source_samples.spectrum != target_samples.spectrum:
        _fail(
            "adapt",
            f"the source holds {source_samples.spectrum!r}-spectrum features and the target "
            f"{target_samples.spectrum!r}; use one mode",
        )
    rows = source_samples.labelled
    weight = None if class_weight is ClassWeight.none else class_weight.value
    provenance = {
        "command": "adapt",
        "method": "svm",
        "source": str(source),
        "target": str(target),
        "seed": seed,
        "C": c,
        "class_weight": weight,
    }
    try:
        adapted = adapt_domains(
            source_samples.features[rows],
            source_samples.is_fake[rows],
            target_samples.features[target_samples.usable],
            spectrum=source_samples.spectrum,
            seed=seed,
            C=c,
            gamma=gamma,
            class_weight=weight,
            provenance=provenance,
        )
    except DetectorError as exc:
        _fail("adapt", str(exc))
    source_counts, target_counts = source_samples.counts(), target_samples.counts()
    typer.echo(f"source: {source_counts['real']} real, {source_counts['fake']} fake rows; {_left_out(source_counts)}")
    typer.echo(f"target: {int(target_samples.usable.sum())} rows; {_left_out(target_counts, unlabelled=False)}")
    _save_model_or_exit("adapt", adapted.model, out)
    typer.echo(f"classify only {target}'s domain with it: it rescales features by that domain's mixture means")
    raise typer.Exit(EXIT_SOME_UNUSABLE if source_counts["unusable"] or target_counts["unusable"] else EXIT_OK)


@app.command()
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
        EvaluationProtocol,
        typer.Option(
            "--protocol",
            help="binary: GMM and SVM (Table 2); few-fakes: SVM with 50/25/5/1 % fakes (Table 3); "
            "adaptation: every source -> target pair (Table 4).",
        ),
    ] = EvaluationProtocol.all,
    test_size: Annotated[
        float,
        typer.Option("--test-size", min=0.0, max=1.0, help="Share of each set held out for testing (stratified)."),
    ] = 0.5,
    seed: SeedOption = 0,
    labels: LabelsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of Markdown.")] = False,
) -> None:
    """Run the paper's evaluation protocols on labelled sets, seeded so that a run repeats exactly."""
    from scanner.detect import DetectorError
    from scanner.evaluate import PROTOCOLS, markdown
    from scanner.evaluate import evaluate as run_protocols

    named = [(p.name.removesuffix(".h5"), _samples_or_exit("evaluate", [p], labels)) for p in stores]
    chosen = PROTOCOLS if protocol is EvaluationProtocol.all else (protocol.value,)
    if protocol is EvaluationProtocol.all and len(stores) < 2:
        chosen = tuple(p for p in PROTOCOLS if p != "adaptation")
    try:
        result = run_protocols(named, chosen, test_size=test_size, seed=seed)
    except DetectorError as exc:
        _fail("evaluate", str(exc))
    typer.echo(json.dumps(result, indent=2) if as_json else markdown(result), nl=as_json)


# --- spectrum, report --------------------------------------------------------


@app.command("spectrum")
def spectrum_command(
    images: Annotated[
        list[Path], typer.Argument(help="Image files to draw, one row each.", metavar="IMAGE", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Figure to write: .png, .svg or .pdf.", metavar="FIG.png", show_default=False),
    ],
    spectrum: SpectrumOption = Spectrum.log,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Show this model's verdict and score for each image.",
            metavar="MODEL.h5",
            show_default=False,
        ),
    ] = None,
    verdict: Annotated[
        bool, typer.Option("--verdict", help="Show the verdict of the bundled default model (implied by --model).")
    ] = False,
    planner: PlannerOption = Planner.measure,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Draw each image's channel spectra, their stacked view and differences, with its features (Figure 1 of the paper)."""
    from scanner.decode import UnusableImage
    from scanner.figures import FIGURE_FORMATS, save_figure, spectra_view, spectrum_figure

    if out.suffix.lower() not in FIGURE_FORMATS:
        typer.echo(f"scanner spectrum: --out must end in {', '.join(FIGURE_FORMATS)}, not {out.name!r}", err=True)
        raise typer.Exit(EXIT_USAGE)
    judge = _load_model_or_exit("spectrum", model) if model is not None or verdict else None
    extractor = FeatureExtractor(spectrum.value, planner=planner.value)
    views = []
    for path in images:
        try:
            views.append(spectra_view(path, extractor, model=judge, max_pixels=max_pixels))
        except UnusableImage as exc:
            typer.echo(f"{path}: {exc.status}: {exc.reason} (not drawn)", err=True)
    if not views:
        typer.echo("scanner spectrum: no usable image to draw; nothing written", err=True)
        raise typer.Exit(EXIT_SOME_UNUSABLE)
    try:
        save_figure(spectrum_figure(views), out)
    except OSError as exc:
        typer.echo(f"scanner spectrum: cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_FATAL) from None
    typer.echo(f"{out}: {len(views)} of {len(images)} images drawn")
    raise typer.Exit(EXIT_SOME_UNUSABLE if len(views) < len(images) else EXIT_OK)


FeatureName = Enum("FeatureName", {name: name for name in FEATURE_NAMES}, type=str)


@app.command("report")
def report_command(
    store: Annotated[
        Path, typer.Argument(help="Feature store written by scanner scan.", metavar="FEATURES.h5", show_default=False)
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write.", metavar="REPORT.html", show_default=False)
    ],
    verdicts: Annotated[
        Path | None,
        typer.Option(
            "--verdicts",
            help="Verdicts CSV from scanner classify: counts, and the most suspicious files.",
            metavar="VERDICTS.csv",
            show_default=False,
        ),
    ] = None,
    thumbnails: Annotated[
        bool,
        typer.Option("--thumbnails", help="Embed small downscaled thumbnails of the top files (never the originals)."),
    ] = False,
    top: Annotated[
        int, typer.Option("--top", min=0, metavar="N", help="How many of the most suspicious files to show.")
    ] = 20,
    scatter: Annotated[
        tuple[FeatureName, FeatureName],
        typer.Option("--scatter", help="The two features of the scatter plot.", metavar="FEATURE_X FEATURE_Y"),
    ] = (FeatureName.mean, FeatureName.icorr_rg),
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Write one self-contained HTML report of a sweep: counts, histograms, encodings, the most suspicious files."""
    from scanner.report import ReportError, ReportInputs, build_report, read_verdicts, write_report
    from scanner.store import StoreError, read_features

    try:
        table = read_features(store)
        inputs = ReportInputs(
            store_name=str(store),
            verdicts=read_verdicts(verdicts, table) if verdicts is not None else None,
            top=top,
            thumbnails=thumbnails,
            scatter=(scatter[0].value, scatter[1].value),
            max_pixels=max_pixels,
        )
        text = build_report(table, inputs)
    except (StoreError, ReportError) as exc:
        typer.echo(f"scanner report: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        write_report(text, out)
    except OSError as exc:
        typer.echo(f"scanner report: cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_FATAL) from None
    typer.echo(f"{out}: report of {len(table):,} files ({len(text.encode()) / 1e6:.1f} MB)")


# --- bench -------------------------------------------------------------------


class ImageFormat(str, Enum):
    jpeg = "jpeg"
    png = "png"


@app.command()
def bench(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Images to time (default: a generated set, removed afterwards).",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", min=8, help="Side of the generated images, px.")] = 256,
    image_format: Annotated[
        ImageFormat, typer.Option("--format", help="Format of the generated images.")
    ] = ImageFormat.jpeg,
    images: Annotated[
        int | None,
        typer.Option(
            "--images", min=2, help="How many images (default: about 32 megapixels' worth).", show_default=False
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Most processes for the scaling runs (default: the usable cores).",
            show_default=False,
        ),
    ] = None,
    spectrum: SpectrumOption = Spectrum.log,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed passes per stage (the median is reported).")
    ] = 3,
    planner: PlannerOption = Planner.measure,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with every figure instead of text.")] = False,
) -> None:
    """Time decode, FFT, features, scan and the authors' pipeline side by side, in one run."""
    from scanner.bench import format_report, run_bench

    def progress(message: str) -> None:
        if sys.stderr.isatty():
            typer.echo(f"bench: {message}...", err=True)

    try:
        report = run_bench(
            directory,
            size,
            image_format.value,
            images,
            workers,
            spectrum.value,
            repeats,
            planner.value,
            progress=progress,
        )
    except ValueError as exc:
        typer.echo(f"scanner bench: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(json.dumps(report.to_dict()) if as_json else format_report(report))


def main() -> None:
    """Entry point of the `scanner` console script."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
