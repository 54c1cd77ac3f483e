"""Data: loading local files or Hub datasets, label/group encoding, counterfactual pair ids, balance weights.

The package also holds the bundled demo data (`fairtune/data/demo/`). Its names are imported lazily, so a light
submodule (`fairtune.data.squad`, which counterfactual augmentation uses) does not pull in `datasets` and torch.
"""

from __future__ import annotations

from fairtune._lazy import lazy_getattr

_EXPORTS = {
    "Encodings": "fairtune.data.loading",
    "add_balance_weights": "fairtune.data.loading",
    "balance_weights": "fairtune.data.loading",
    "encode_datasets": "fairtune.data.loading",
    "load_raw_datasets": "fairtune.data.loading",
    "pair_columns": "fairtune.data.loading",
    "flatten_squad": "fairtune.data.squad",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
