"""RedditBias loader: every cleaning rule counted on files built with the real files' quirks, the stratified seeded
split, `dataset_name: redditbias` from a recipe, Dixon et al. balancing, the identity lexicon; checks on the real
copy in ../shared/data when it is there."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SHARED

from fairtune.data.redditbias import (
    FILES,
    GROUPS,
    dixon_balance,
    load_redditbias,
    load_redditbias_rows,
    mentioned_groups,
    read_wiki_augmentation,
    stratified_split,
)

REAL = SHARED / "data" / "redditbias"
WIKI = SHARED / "data" / "wiki_debias_augmentation" / "toxicity_debiasing_data.tsv"
HEADER = ["id", "attribute_in_window", "comment", "phrase", "bias_sent", "bias_phrase"]


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _body(group: str, n: int, label_of=lambda i: str(i % 2)) -> list[list[str]]:
    return [[f"{group[:2]}{i}", "TRUE", f"{group} comment number {i}", "phrase", label_of(i), "0"] for i in range(n)]


def make_redditbias(root: Path) -> Path:
    """Five files with the quirks of the real ones; the expected counts are in the test below."""
    root.mkdir(parents=True, exist_ok=True)
    female = [["attribute_in_window", "comment", "phrase", "bias_sent", "bias_phrase", ""]]  # no id, trailing column
    female += [[r[1], r[2], r[3], r[4], r[5], ""] for r in _body("female", 20, lambda i: "1" if i % 3 else "0")]
    female += [
        ["TRUE", "women are x", "p", "2", "0", ""],  # stray label
        ["TRUE", "women are y", "p", "", "", ""],  # not annotated
        ["TRUE", "   ", "p", "1", "1", ""],  # empty text
        ["TRUE", "female comment number 1", "p", "1", "1", ""],  # repeat of row 1 (label 1): dropped, first kept
        ["TRUE", "mothers  are z", "p", "1", "1", ""],  # conflicting repeats (whitespace differs): both dropped
        ["TRUE", "mothers are z", "p", "0", "0", "0"],  # ...and a value in the unnamed column (ignored, counted)
    ]
    (root / FILES["female"]).write_text(_csv(female), encoding="utf-8")
    lgbtq = [HEADER] + [["", *r[1:]] for r in _body("lgbtq", 10)]  # empty ids
    (root / FILES["lgbtq"]).write_text(_csv(lgbtq), encoding="utf-8")
    shared_comment = ["x1", "TRUE", "black and muslim people both", "p", "1", "1"]
    black = [HEADER, *_body("black", 10), shared_comment]
    (root / FILES["black"]).write_text(_csv(black), encoding="utf-8")
    jewish = [HEADER, *_body("jewish", 10), ["j-a", "TRUE", "jews don\u2019t", "p", "biased?", "0"],
              ["j-b", "TRUE", "jewish people\u2019s z", "p", "re-state", "0"],
              ["j-c", "TRUE", "jewish caf\u00e9 \u2019quote\u2019", "p", "1", "1"]]  # fmt: skip
    (root / FILES["jewish"]).write_bytes(_csv(jewish).encode("cp1252"))  # not valid UTF-8
    muslim = [HEADER, *_body("muslim", 10), shared_comment]
    (root / FILES["muslim"]).write_text(_csv(muslim), encoding="utf-8")
    return root


def test_every_cleaning_rule_is_counted(tmp_path):
    splits, report = load_redditbias_rows(make_redditbias(tmp_path / "rb"), seed=1)
    assert report.read == {"female": 26, "lgbtq": 10, "black": 11, "jewish": 13, "muslim": 11}
    assert report.dropped == {
        "stray_label": {"female": 1, "jewish": 2},
        "not_annotated": {"female": 1},
        "empty_text": {"female": 1},
        "in_several_groups": {"black": 1, "muslim": 1},
        "duplicate": {"female": 1},
        "duplicate_conflicting_labels": {"female": 2},
    }
    assert report.stray_labels == {"2": 1, "biased?": 1, "re-state": 1}
    assert report.repaired == {
        "trailing_empty_column_rows": {"female": 26},
        "unnamed_column_value_ignored": {"female": 1},
        "missing_id_column_rows": {"female": 26},
        "empty_id_rows": {"lgbtq": 10},
        "cp1252_rows": {"jewish": 13},
    }
    assert report.encodings == {"female": "utf-8", "lgbtq": "utf-8", "black": "utf-8", "jewish": "cp1252",
                                "muslim": "utf-8"}  # fmt: skip
    assert report.kept == {"female": 20, "lgbtq": 10, "black": 10, "jewish": 11, "muslim": 10}
    rows = [r for split in splits.values() for r in split]
    assert len(rows) == sum(report.kept.values()) == sum(report.read.values()) - sum(report.total_dropped().values())
    assert "jewish caf\u00e9 \u2019quote\u2019" in {r["text"] for r in rows}  # decoded as cp1252, not mangled
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) and {"female-2", "lgbtq-2"} <= set(ids)  # ids made from group + file row
    assert {tuple(sorted(r)) for r in rows} == {("group", "id", "label", "text")}
    assert Counter(r["text"] for r in rows)["female comment number 1"] == 1
    assert "| total | 71 |" in report.markdown() and "cp1252_rows: 13" in report.markdown()


def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    rows = [{"id": f"{g}{i}", "text": f"t {g} {i}", "label": int(i < n1), "group": g, "row": i}
            for g, n, n1 in (("a", 100, 70), ("b", 60, 20)) for i in range(n)]  # fmt: skip
    s1 = stratified_split([dict(r) for r in rows], 0.15, 0.15, seed=3)
    for g, n, n1 in (("a", 100, 70), ("b", 60, 20)):
        for label, cell in ((1, n1), (0, n - n1)):
            got = {k: sum(1 for r in v if r["group"] == g and r["label"] == label) for k, v in s1.items()}
            assert got["test"] == round(cell * 0.15) and got["validation"] == round(cell * 0.15)
            assert got["train"] == cell - 2 * round(cell * 0.15)
    ids = {k: [r["id"] for r in v] for k, v in s1.items()}
    assert sorted(sum(ids.values(), [])) == sorted(r["id"] for r in rows)  # disjoint and complete
    shuffled = list(reversed([dict(r) for r in rows]))
    assert {k: [r["id"] for r in v] for k, v in stratified_split(shuffled, 0.15, 0.15, 3).items()} == ids
    assert [r["id"] for r in stratified_split([dict(r) for r in rows], 0.15, 0.15, 4)["test"]] != ids["test"]
    with pytest.raises(ValueError, match="sum to less than 1"):
        stratified_split(rows, 0.5, 0.5, 0)


def test_recipe_dataset_name_redditbias(tmp_path):
    from fairtune.data import encode_datasets, load_raw_datasets
    from fairtune.parser import parse_config

    root = make_redditbias(tmp_path / "rb")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"dataset_name": "redditbias", "data_dir": str(root), "text_column": "text",
                                      "label_column": "label", "group_column": "group", "output_dir": str(tmp_path / "o"),
                                      "eo_weight": 1.0}))  # fmt: skip
    _, data_args, training_args = parse_config(str(recipe), [])
    raw = load_raw_datasets(data_args)
    assert set(raw) == {"train", "validation", "test"}
    assert sum(len(v) for v in raw.values()) == 61 and set(raw["train"]["group"]) == set(GROUPS)
    encoded, enc = encode_datasets(raw, data_args, training_args)
    assert sorted(enc.group_names) == sorted(GROUPS) and enc.label_list == ["0", "1"]
    data_args.data_dir = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="`data_dir`"):
        load_raw_datasets(data_args)


def test_bad_files_name_the_file(tmp_path):
    root = make_redditbias(tmp_path / "rb")
    (root / FILES["black"]).write_text("id,comment\nx,y\n")
    with pytest.raises(ValueError, match="race_black.*no 'bias_sent' column"):
        load_redditbias(root)
    (root / FILES["black"]).unlink()
    with pytest.raises(FileNotFoundError, match="group black"):
        load_redditbias(root)
    with pytest.raises(ValueError, match="unknown"):
        load_redditbias(root, groups=["martians"])


def test_dixon_balance_adds_non_biased_rows_to_groups_above_the_rate():
    train = [{"id": f"a{i}", "text": "x", "label": int(i < 8), "group": "a"} for i in range(10)]
    train += [{"id": f"b{i}", "text": "y", "label": int(i < 2), "group": "b"} for i in range(10)]
    before = [dict(r) for r in train]
    terms = {"a": ("alpha",), "b": ("beta",)}
    sentences = [f"Alpha sentence {i}." for i in range(4)] + ["Alpha and beta together."] * 3 + ["Beta only."]
    out, added = dixon_balance(train, sentences, seed=0, terms=terms)
    assert train == before  # the input is not modified
    assert added == {"a": 6, "b": 0}  # a: 8 biased of 10 at overall rate 0.5 -> 16 rows; b is below the rate
    new = [r for r in out if r["source"] == "wiki_dixon"]
    assert len(new) == 6 and all(r["label"] == 0 and r["group"] == "a" for r in new)
    assert sum(1 for r in new if "beta" in r["text"]) == 2  # single-group sentences first, then shared ones
    assert all(r["text"] == r["text"].lower() for r in new)
    a = [r for r in out if r["group"] == "a"]
    assert sum(r["label"] for r in a) / len(a) == pytest.approx(0.5)
    assert mentioned_groups("Gay rights in a mosque") == ["lgbtq", "muslim"]
    assert mentioned_groups("the blackbird sang") == []


def test_identity_lexicon_swaps_the_target_groups_terms():
    from fairtune.augment import CounterfactualAugmenter

    lexicon = REPO / "recipes" / "classification" / "redditbias-identity-lexicon.json"
    aug = CounterfactualAugmenter(axes=("gender",), lexicons=[str(lexicon)])
    assert aug.counterfactual("gay people are mentally ill") == "straight people are mentally ill"
    assert aug.counterfactual("jewish people and muslims") == "christian people and christians"
    assert aug.counterfactual("black women are loud") == "white men are loud"
    assert aug.counterfactual("lesbians are weird") == "straight women are weird"


@pytest.mark.skipif(not REAL.is_dir(), reason="RedditBias is not in ../shared/data/redditbias (not shipped)")
def test_real_redditbias_counts_and_split():
    splits, report = load_redditbias_rows(REAL)
    dropped = report.total_dropped()
    assert sum(report.read.values()) == 28131  # SOURCE.md: rows of the five files
    labelled = sum(report.read.values()) - dropped["not_annotated"] - dropped["stray_label"]
    assert labelled == 11492  # SOURCE.md: labelled 0/1
    assert report.encodings["jewish"] == "cp1252" and report.repaired["missing_id_column_rows"] == {"female": 3000}
    assert sum(report.kept.values()) == labelled - dropped["empty_text"] - dropped["in_several_groups"] - (
        dropped["duplicate"] + dropped["duplicate_conflicting_labels"]
    )
    rate = {g: sum(r["label"] for s in splits.values() for r in s if r["group"] == g) / report.kept[g] for g in GROUPS}
    assert rate["female"] == pytest.approx(0.68, abs=0.01) and rate["black"] == pytest.approx(0.45, abs=0.01)
    for split in splits.values():  # every split keeps every group's base rate
        for g in GROUPS:
            rows = [r for r in split if r["group"] == g]
            assert sum(r["label"] for r in rows) / len(rows) == pytest.approx(rate[g], abs=0.01)
    texts = {k: {r["text"] for r in v} for k, v in splits.items()}
    assert not (texts["train"] & texts["test"]) and not (texts["train"] & texts["validation"])


@pytest.mark.skipif(not WIKI.is_file(), reason="Dixon et al.'s data is not in ../shared/data (not shipped)")
def test_real_wiki_augmentation_reads_the_train_split():
    train = read_wiki_augmentation(WIKI)
    assert len(train) == 3465 and len(read_wiki_augmentation(WIKI, split="dev")) == 1155
