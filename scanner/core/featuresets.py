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

FEATURE_SETS: dict[str, FeatureSet] = {PAPER.name: PAPER, EXTENDED.name: EXTENDED}
FEATURE_NAMES = PAPER.names  # the paper's six, first in every feature set
assert all(s.names[: len(FEATURE_NAMES)] == FEATURE_NAMES for s in FEATURE_SETS.values())
FeatureSetName = Literal["paper", "extended"]
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
