"""The feature sets: names and meaning, declared once and light to import.

A feature set is what an extractor computes from one FFT of the three colour
channels. Its declaration here (the column names a store and a model record and
check) carries no code; ``engine`` names the class that computes it, imported
only when features are actually measured (scanner.engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from scanner.errors import InputError


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
    engine="scanner.paper:PaperFeatures",
)

FEATURE_SETS: dict[str, FeatureSet] = {PAPER.name: PAPER}
FEATURE_NAMES = PAPER.names  # the paper's six, first in every feature set
FeatureSetName = Literal["paper"]
assert get_args(FeatureSetName) == tuple(FEATURE_SETS)
DEFAULT_FEATURE_SET: FeatureSetName = "paper"


def get_feature_set(name: str) -> FeatureSet:
    """The feature set called `name`; InputError naming the choices otherwise."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise InputError(f"unknown feature set {name!r}; choose from {', '.join(FEATURE_SETS)}") from None


def feature_set_of_names(names: tuple[str, ...] | list[str]) -> FeatureSet | None:
    """The feature set whose columns are exactly these names, if any."""
    for candidate in FEATURE_SETS.values():
        if tuple(names) == candidate.names:
            return candidate
    return None
