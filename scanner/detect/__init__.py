"""Detectors: classifiers of feature rows, their model files, verdicts, and the paper's protocols.

labels reads real/fake labels; samples turns feature tables into labelled rows;
decisions holds fitted decision functions; model reads and writes model files
(and the bundled ones); fit fits them; verdicts writes and reads the verdicts
file and sets thresholds; workflows is what `train` and `classify` do;
evaluate the paper's protocols; inputs what detectors read (stores or images).
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "model": ["Model", "load_model", "bundled_model"],
        "fit": ["fit_classifier", "fit_gmm", "fit_svm", "fit_logistic", "adapt"],
        "workflows": ["train", "classify", "judge"],
        "verdicts": ["VerdictFile", "read_verdicts", "write_verdicts", "threshold_at_fpr"],
        "labels": ["label_from_path", "read_labels_csv"],
        "samples": ["Samples", "samples_of"],
    },
)
