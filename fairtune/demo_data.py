"""The bundled controlled-bias data set of `make demo`: short biographies classified by occupation.

Gender (pronouns, titles, first names) agrees with the stereotyped occupation in `train_bias` of the training
rows and is independent of it in validation and test, so a gender shortcut learned in training shows as a TPR gap
on test. Built deterministically from templates and US Census first names (see data/demo/SOURCE.md).
"""

from __future__ import annotations

import json
import random
from importlib import resources

from datasets import Dataset, DatasetDict

LABELS = ("nurse", "surgeon")
CUES = {
    "nurse": [
        "{p} monitors patients through the night shift",
        "{p} gives injections and changes dressings on the ward",
        "{p} trained in patient care and bedside support",
        "{p} checks vital signs and keeps care charts up to date",
        "{p} comforts patients before their procedures",
        "{p} coordinates the nursing staff on the pediatric ward",
    ],
    "surgeon": [
        "{p} performs heart operations in the theatre",
        "{p} repairs broken bones in the operating room",
        "{p} trained for years to operate on the brain",
        "{p} removes tumours with a steady scalpel",
        "{p} leads the transplant team during long operations",
        "{p} sutures wounds after emergency surgery",
    ],
}
NEUTRAL = [
    "{p} enjoys hiking on weekends",
    "{p} lives in a small town with two cats",
    "{p} reads novels in the evening",
    "{p} volunteers at the local library",
    "{p} grew up near the coast",
    "{p} likes to cook for friends",
    "{p} plays chess with {q} neighbours",
    "{p} recently moved to a new city",
]
OPENERS = [
    "{name} works at the city hospital.",
    "{name} has worked in healthcare for {n} years.",
    "{name} joined the clinic {n} years ago.",
    "Meet {name}, a member of the hospital staff.",
]
PRONOUNS = {"female": ("She", "her"), "male": ("He", "his")}


def _names() -> dict[str, list[str]]:
    path = resources.files("fairtune").joinpath("data/demo/first_names.json")
    return json.loads(path.read_text())


def make_rows(n: int, bias: float, seed: int, cue_rate: float = 0.5) -> list[dict]:
    """`n` biographies; gender agrees with the stereotyped occupation with probability `bias`."""
    rng = random.Random(seed)
    names = _names()
    rows = []
    for _ in range(n):
        label = rng.choice(LABELS)
        stereo = "female" if label == "nurse" else "male"
        other = "male" if stereo == "female" else "female"
        gender = stereo if rng.random() < bias else other
        p, q = PRONOUNS[gender]
        name = rng.choice(names[gender])
        opener = rng.choice(OPENERS).format(name=name, n=rng.randint(2, 25))
        has_cue = rng.random() < cue_rate
        body = rng.choice(CUES[label] if has_cue else NEUTRAL).format(p=p, q=q)
        extra = rng.choice(NEUTRAL).format(p=p, q=q)
        text = f"{opener} {body}. {extra}."
        rows.append({"text": text, "label": label, "gender": gender, "has_cue": has_cue})
    return rows


def load_demo_dataset(
    n_train: int = 1200, n_validation: int = 300, n_test: int = 600, train_bias: float = 0.9, seed: int = 0
) -> DatasetDict:
    """Train (biased), validation and test (unbiased) splits of the demo task."""
    return DatasetDict(
        {
            "train": Dataset.from_list(make_rows(n_train, train_bias, seed)),
            "validation": Dataset.from_list(make_rows(n_validation, 0.5, seed + 1)),
            "test": Dataset.from_list(make_rows(n_test, 0.5, seed + 2)),
        }
    )
