"""SQuAD-format helpers: flattening the nested JSON and reading an `answers` value, one copy each."""

from __future__ import annotations

from typing import Any


def answer_lists(answers: Any, where: str = "answers") -> tuple[list[str], list[int]]:
    """(texts, starts) from a SQuAD `answers` value: a dict of lists or a list of dicts (None: no answer).

    Anything else, or texts and starts of different lengths, is an error naming `where` (e.g. the file row).
    """
    if answers is None:
        return [], []
    if isinstance(answers, dict) and "text" in answers and "answer_start" in answers:
        texts, starts = list(answers["text"]), list(answers["answer_start"])
    elif isinstance(answers, list) and all(
        isinstance(a, dict) and "text" in a and "answer_start" in a for a in answers
    ):
        texts, starts = [a["text"] for a in answers], [a["answer_start"] for a in answers]
    else:
        raise ValueError(
            f"{where}: `answers` must be {{'text': [...], 'answer_start': [...]}} (SQuAD schema), got {answers!r}."
        )
    if len(texts) != len(starts):
        raise ValueError(f"{where}: `answers` has {len(texts)} texts but {len(starts)} answer_start values.")
    try:
        return [str(t) for t in texts], [int(s) for s in starts]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `answer_start` values must be integers, got {starts!r}.") from None


def flatten_squad(data: dict) -> list[dict[str, Any]]:
    """Rows (`id`, `title`, `context`, `question`, `answers`) from SQuAD's nested JSON (`data/paragraphs/qas`)."""
    rows = []
    for article in data["data"]:
        for para in article.get("paragraphs", []):
            for qa in para.get("qas", []):
                answers = qa.get("answers", [])
                rows.append(
                    {
                        "id": str(qa["id"]),
                        "title": article.get("title", ""),
                        "context": para["context"],
                        "question": qa["question"],
                        "answers": {
                            "text": [a["text"] for a in answers],
                            "answer_start": [int(a["answer_start"]) for a in answers],
                        },
                    }
                )
    return rows
