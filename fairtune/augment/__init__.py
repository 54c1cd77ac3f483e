"""Counterfactual data augmentation: exact gender, name and identity-term swapping for text, QA and NER.

from fairtune.augment import CounterfactualAugmenter
aug = CounterfactualAugmenter(axes=("gender", "names"), seed=0)
aug.counterfactual("He praised his sister.")          # 'She praised her brother.'
aug.swap("He praised his sister.").edits                # character-offset edits
aug.augment_dataset(ds, task="qa", mode="two_sided")    # adds cf_source, cf_origin, cf_edits
aug.neutralize("He is her father.")                     # 'They are their parent.' (mode="neutralize")
"""

from fairtune.augment.augmenter import CounterfactualAugmenter, augment_dataset, group_from_lexicon
from fairtune.augment.datasets import CF_EDITS, CF_ORIGIN, CF_SOURCE, CF_TOKEN_MAP, MODES, TASKS
from fairtune.augment.lexicon import BUILTIN_AXES, builtin_lexicon, load_lexicon_file
from fairtune.augment.neutral import Neutralizer
from fairtune.augment.swapper import Edit, Swapper, SwapResult, map_offset

__all__ = [
    "BUILTIN_AXES",
    "CF_EDITS",
    "CF_ORIGIN",
    "CF_SOURCE",
    "CF_TOKEN_MAP",
    "MODES",
    "TASKS",
    "CounterfactualAugmenter",
    "Edit",
    "Neutralizer",
    "SwapResult",
    "Swapper",
    "augment_dataset",
    "builtin_lexicon",
    "group_from_lexicon",
    "load_lexicon_file",
    "map_offset",
]
