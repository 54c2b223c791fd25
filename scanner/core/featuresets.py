"""The feature sets: names and meaning, declared once and light to import.

A feature set is what an extractor computes from one FFT of the three colour
channels. Its declaration here (the column names a store and a model record and
check) carries no code; ``engine`` names the class that computes it, imported
only when features are actually measured (scanner.features.engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from scanner.core.echo import echoed
from scanner.core.errors import InputError


@dataclass(frozen=True)
class FeatureSet:
    name: str
    names: tuple[str, ...]
    summary: str
    engine: str  # "module:Class" computing it from a half spectrum

    @property
    def width(self) -> int:
        return len(self.names)


PAPER = FeatureSet(
    name="paper",
    names=("mean", "max", "min", "icorr_rg", "icorr_rb", "icorr_gb"),
    summary="Le and Woo (2021): mean, max and min of the channel-pair spectral distances, "
    "and 1 - Pearson of each channel pair",
    engine="scanner.features.paper:PaperFeatures",
)

# The extended set's groups (docs/method.md defines them): 16 radial bins of the
# spectrum; probes of periodic peaks on the 1/8 grid, named by (ky, kx) in eighths.
RADIAL_BINS = 16
NAMED_PEAKS = ((0, 4), (4, 0), (4, 4), (0, 2), (2, 0), (2, 2), (2, 4), (2, 6), (4, 2))  # levels 1/2 then 1/4
PEAK_LEVELS = (2, 4, 8)  # 1/2, 1/4, 1/8


def _extended_names() -> tuple[str, ...]:
    radial = range(RADIAL_BINS)
    return (
        *PAPER.names,
        *(f"lum_{k:02d}" for k in radial),
        *(f"cb_ratio_{k:02d}" for k in radial),
        *(f"cr_ratio_{k:02d}" for k in radial),
        *(f"peak_{ky}_{kx}" for ky, kx in NAMED_PEAKS),
        *(f"peak_{level}_{stat}" for level in PEAK_LEVELS for stat in ("mean", "max")),
    )


EXTENDED = FeatureSet(
    name="extended",
    names=_extended_names(),
    summary="the paper's six, then statistics of the same transform that survive JPEG compression: the luminance "
    "log-spectrum's radial profile (16), the chroma-minus-luminance profiles of Cb and Cr (32) and the prominence "
    "of periodic peaks on the 1/8 grid (15)",
    engine="scanner.features.extended:ExtendedFeatures",
)

# The residual set's groups (docs/method.md defines them): Welch spectra of the median residual over
# 32 x 32 windows; 8 radial bins; peak probes (u, v) on the window's 32-point grid (multiples of 4: the
# 1/8-cycle grid); coherence of the R, G, B residuals in 4 radial bands.
RESIDUAL_WINDOW = 32
RESIDUAL_BINS = 8
RESIDUAL_PEAK_STEPS = (0, 4, 8, 12, 16)
RESIDUAL_PEAKS = tuple((u, v) for u in RESIDUAL_PEAK_STEPS for v in RESIDUAL_PEAK_STEPS if u or v)
COHERENCE_EDGES = (0.0, 0.35, 0.7, 1.05, 2.0**0.5)
COHERENCE_PAIRS = ("rg", "rb", "gb")


def _residual_names() -> tuple[str, ...]:
    radial = range(RESIDUAL_BINS)
    bands = range(len(COHERENCE_EDGES) - 1)
    return (
        *EXTENDED.names,
        *(f"res_lum_{k}" for k in radial),
        *(f"res_cb_ratio_{k}" for k in radial),
        *(f"res_cr_ratio_{k}" for k in radial),
        *(f"res_peak_{u}_{v}" for u, v in RESIDUAL_PEAKS),
        "res_peak_16th_mean",
        "res_peak_16th_max",
        *(f"res_coh_{pair}_{band}" for pair in COHERENCE_PAIRS for band in bands),
    )


RESIDUAL = FeatureSet(
    name="residual",
    names=_residual_names(),
    summary="the extended set's 69, then Welch spectra (32 x 32 windows) of each channel's residual from its "
    "3 x 3 median: the luminance residual's radial profile (8), the chroma-minus-luminance profiles (16), "
    "peak prominences on the 1/8 and 1/16 grids (26) and the R, G, B residuals' coherence in 4 bands (12)",
    engine="scanner.features.residual:ResidualFeatures",
)

FEATURE_SETS: dict[str, FeatureSet] = {PAPER.name: PAPER, EXTENDED.name: EXTENDED, RESIDUAL.name: RESIDUAL}
FEATURE_NAMES = PAPER.names  # the paper's six, first in every feature set
assert all(s.names[: len(FEATURE_NAMES)] == FEATURE_NAMES for s in FEATURE_SETS.values())
FeatureSetName = Literal["paper", "extended", "residual"]
assert get_args(FeatureSetName) == tuple(FEATURE_SETS)
DEFAULT_FEATURE_SET: FeatureSetName = "paper"


def get_feature_set(name: str) -> FeatureSet:
    """The feature set called `name`; InputError naming the choices otherwise."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise InputError(f"unknown feature set {echoed(name)}; choose from {', '.join(FEATURE_SETS)}") from None


def feature_set_of_names(names: tuple[str, ...] | list[str]) -> FeatureSet | None:
    """The feature set whose columns are exactly these names, if any."""
    for candidate in FEATURE_SETS.values():
        if tuple(names) == candidate.names:
            return candidate
    return None
