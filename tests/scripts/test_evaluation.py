"""scripts/evaluation.py's group-by-group section, on samples with a known signal in one group."""

import sys
from pathlib import Path

import numpy as np

from scanner.core.featuresets import EXTENDED, RESIDUAL
from scanner.core.schema import Measurement
from scanner.detect.samples import Samples

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import evaluation


def _samples(rng: np.random.Generator, per_class: int, shifted: np.ndarray) -> Samples:
    """Residual-set rows of noise, the fakes shifted by 2.5 in the `shifted` columns."""
    features = rng.normal(size=(2 * per_class, RESIDUAL.width))
    features[per_class:, shifted] += 2.5
    return Samples(
        [f"{i}.png" for i in range(2 * per_class)],
        np.array(["ok"] * (2 * per_class), dtype=object),
        features,
        np.array(["real"] * per_class + ["fake"] * per_class, dtype=object),
        Measurement(RESIDUAL.name, "log", "double"),
    )


def test_the_groups_are_the_residual_sets_62_columns_as_docs_method_names_them():
    groups = evaluation._group_columns()
    assert {g: len(c) for g, c in groups.items()} == {"luminance": 8, "chroma": 16, "peaks": 26, "coherence": 12}
    names = RESIDUAL.names
    assert all(names[i].startswith("res_peak_") for i in groups["peaks"])
    assert all(names[i].startswith(("res_cb_ratio_", "res_cr_ratio_")) for i in groups["chroma"])
    assert sorted(np.concatenate(list(groups.values()))) == list(range(EXTENDED.width, RESIDUAL.width))


def test_the_group_that_carries_the_signal_adds_alone_and_is_missed_when_left_out():
    rng = np.random.default_rng(5)
    peaks = evaluation._group_columns()["peaks"]
    data: dict[str, dict[str, Samples]] = {}
    for name in evaluation.SETS:
        for _, version in evaluation._versions(name):
            data.setdefault(version, {})[name] = _samples(rng, 40, peaks[:3])
    lines, results = evaluation.residual_groups(data)
    assert lines[0] == evaluation.GROUPS_HEADING
    side_lines, side = evaluation.side_by_side(data)
    for key, result in results.items():
        acc = {column: float(np.mean(values)) for column, values in result["acc"].items()}
        # the 69 see only noise; the peaks alone carry the planted difference
        assert abs(acc["69"] - 0.5) < 0.2
        assert acc["69 + peaks"] > acc["69"] + 0.2
        assert acc["131 - peaks"] < acc["131"] - 0.2
        for other in ("luminance", "chroma", "coherence"):
            assert acc[f"69 + {other}"] < acc["69 + peaks"] - 0.15
            assert acc[f"131 - {other}"] > acc["131 - peaks"] + 0.15
        # the same fits as the side-by-side table's columns of the default detector
        assert result["acc"]["69"] == side[key]["acc"]["69, logistic"]
        assert result["acc"]["131"] == side[key]["acc"]["131, logistic"]
