"""`CounterfactualAugmenter`, the public face of counterfactual data augmentation, and `group_from_lexicon`."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fairtune.augment import datasets as _ds
from fairtune.augment.lexicon import GroupLexicon, resolve_lexicons
from fairtune.augment.swapper import Swapper, SwapResult


class CounterfactualAugmenter:
    """Swap gendered words, names and identity terms in text, QA and NER data, exactly and reproducibly.

    Args:
        axes: what to swap: any of `gender`, `names`, `names_race`, `religion`, `nationality` (or a comma string).
        seed: fixes the per-example choices of multi-group axes (religion, nationality, names_race).
        lexicons: user lexicon files (.json/.tsv), validated; each extends (or with `replace` replaces) its axis.
    """

    def __init__(
        self,
        axes: Sequence[str] | str = ("gender",),
        seed: int = 0,
        lexicons: Iterable[str | Path] = (),
    ) -> None:
        """Resolve and validate the lexicons and compile the swapper once."""
        if isinstance(axes, str):
            axes = [a for a in axes.split(",")]
        self.seed = int(seed)
        self.lexicon_files = [str(p) for p in lexicons]
        self.swapper = Swapper(resolve_lexicons(axes, self.lexicon_files), seed=self.seed)
        self.axes = self.swapper.axes
        self._neutralizer: Swapper | None = None

    def __repr__(self) -> str:
        return f"CounterfactualAugmenter(axes={self.axes!r}, seed={self.seed})"

    def swapper_for(self, mode: str) -> Swapper:
        """The engine a mode uses: the counterfactual swapper, or for `neutralize` the neutralizer (built once)."""
        if _ds.normalize_mode(mode) != "neutralize":
            return self.swapper
        if self._neutralizer is None:
            from fairtune.augment.neutral import Neutralizer

            self._neutralizer = Neutralizer(self.swapper.lexicons, seed=self.seed)
        return self._neutralizer

    def counterfactual(self, text: str) -> str:
        """The counterfactual twin of `text` ("he praised his sister" -> "she praised her brother")."""
        return self.swapper.counterfactual(text)

    def neutralize(self, text: str) -> str:
        """`text` with neutral terms ("He is her father" -> "They are their parent"); mode `neutralize`."""
        return self.swapper_for("neutralize").counterfactual(text)

    def swap(self, text: str) -> SwapResult:
        """The counterfactual text plus its edits (source/target character offsets, old and new words)."""
        return self.swapper.swap(text)

    def swap_fields(self, texts: Sequence[str]) -> list[SwapResult]:
        """Swap the fields of one example together, so names and group choices agree across them."""
        return self.swapper.swap_fields(texts)

    def augment_rows(
        self,
        rows: Sequence[dict],
        *,
        task: str = "text",
        mode: str = "two_sided",
        text_columns: Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
    ) -> list[dict]:
        """Augment plain dict rows (same output and `cf_*` columns as `augment_dataset`), without `datasets`."""
        task = _ds.normalize_task(task)
        cols = list(rows[0]) if rows else []
        if task in ("text", "classification"):
            text_columns = list(text_columns) if text_columns else _ds.default_text_columns(cols)
        else:
            text_columns = []
        if rows:
            _ds.check_columns(cols, task, text_columns)
        fn = _ds.BatchAugmenter(self.swapper_for(mode), task, mode, text_columns, label_names)
        return fn.augment_rows(rows, range(len(rows)))

    def augment_dataset(
        self,
        ds: Any,
        *,
        task: str = "text",
        mode: str = "two_sided",
        text_columns: Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
        num_proc: int | None = None,
        batch_size: int = 1000,
    ) -> Any:
        """Augment a `datasets.Dataset` through `Dataset.map(batched=True, num_proc=num_proc)`."""
        return _ds.augment_dataset(
            ds,
            self.swapper_for(mode),
            task=task,
            mode=mode,
            text_columns=text_columns,
            label_names=label_names,
            num_proc=num_proc,
            batch_size=batch_size,
        )


def augment_dataset(
    ds: Any,
    *,
    task: str = "text",
    mode: str = "two_sided",
    text_columns: Sequence[str] | None = None,
    axes: Sequence[str] | str = ("gender",),
    seed: int = 0,
    lexicons: Iterable[str | Path] = (),
    label_names: Sequence[str] | None = None,
    num_proc: int | None = None,
    batch_size: int = 1000,
) -> Any:
    """One-call dataset augmentation: `CounterfactualAugmenter(axes, seed, lexicons).augment_dataset(ds, ...)`."""
    aug = CounterfactualAugmenter(axes=axes, seed=seed, lexicons=lexicons)
    return aug.augment_dataset(
        ds,
        task=task,
        mode=mode,
        text_columns=text_columns,
        label_names=label_names,
        num_proc=num_proc,
        batch_size=batch_size,
    )


@functools.lru_cache(maxsize=16)
def _detector(axes: tuple[str, ...]) -> Swapper:
    return Swapper(resolve_lexicons(axes))


def group_from_lexicon(text: str, axis: str = "gender") -> str:
    """Label an example by the lexicon terms it mentions: "female" | "male" | "both" | "none" for gender.

    The gender axis counts gendered words (her/his included) and first names that are not homographs. Other axes
    (religion, nationality, names_race) return the one group mentioned, "mixed" for several, or "none".
    """
    axes = ("gender", "names") if axis == "gender" else (axis,)
    det = _detector(axes)
    found = {group for _axis, _src, group in det.terms_in(text) if group}
    if axis == "gender" or not any(isinstance(lx, GroupLexicon) for lx in det.lexicons):
        if not found:
            return "none"
        if found >= {"female", "male"}:
            return "both"
        return next(iter(found)) if len(found) == 1 else "mixed"
    if not found:
        return "none"
    return next(iter(found)) if len(found) == 1 else "mixed"
