"""Names of the columns fairtune adds to every preprocessed split (they travel to the loss and the metrics)."""

GROUP_KEY = "group"  # group id; -1 = missing
PAIR_KEY = "pair_id"  # >= 0 links an example and its counterfactual (same id), -1 = unpaired
IS_CF_KEY = "is_cf"  # 1 for a counterfactual row, 0 for an original
WEIGHT_KEY = "sample_weight"  # `group_balance: reweight` loss weights
FAIRTUNE_KEYS = (GROUP_KEY, PAIR_KEY, IS_CF_KEY)
