"""Data: loading local files or Hub datasets, label/group encoding, counterfactual pair ids, balance weights.

The package also holds the bundled demo data (`fairtune/data/demo/`).
"""

from fairtune.data.loading import (
    Encodings,
    add_balance_weights,
    balance_weights,
    encode_datasets,
    load_raw_datasets,
    pair_columns,
)
from fairtune.data.squad import flatten_squad

__all__ = [
    "Encodings",
    "add_balance_weights",
    "balance_weights",
    "encode_datasets",
    "flatten_squad",
    "load_raw_datasets",
    "pair_columns",
]
