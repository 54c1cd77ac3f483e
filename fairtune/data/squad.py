"""SQuAD-format helpers: flattening the nested JSON and reading an `answers` value, one copy each."""

from __future__ import annotations

from typing import Any


def raw_answers(answers: Any) -> tuple[list[Any], list[Any]] | None:
    """(texts, starts) as stored, from either SQuAD layout (a dict of lists or a list of dicts; None: no answer);
    None when the value has neither layout."""
    if answers is None:
        return [], []
    if isinstance(answers, dict) and "text" in answers and "answer_start" in answers:
        return list(answers["text"] or []), list(answers["answer_start"] or [])
    if isinstance(answers, list) and all(isinstance(a, dict) and {"text", "answer_start"} <= set(a) for a in answers):
        return [a["text"] for a in answers], [a["answer_start"] for a in answers]
    return None


def answer_lists(answers: Any, where: str = "answers") -> tuple[list[str], list[int]]:
    """(texts, starts) from a SQuAD `answers` value, typed; anything else, or texts and starts of different
    lengths, is an error naming `where` (e.g. the file row)."""
    parsed = raw_answers(answers)
    if parsed is None:
        raise ValueError(
            f"{where}: `answers` must be {{'text': [...], 'answer_start': [...]}} (SQuAD schema), got {answers!r}."
        )
    texts, starts = parsed
    if len(texts) != len(starts):
        raise ValueError(f"{where}: `answers` has {len(texts)} texts but {len(starts)} answer_start values.")
    try:
        return [str(t) for t in texts], [int(s) for s in starts]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `answer_start` values must be integers, got {starts!r}.") from None


def answer_span_problem(context: str, text: str, start: int) -> str | None:
    """Why `context[start:start+len(text)] != text` (off by k, not in the context, past the end), or None."""
    if context[start : start + len(text)] == text:
        return None
    found = [i for i in range(len(context)) if context.startswith(text, i)]
    got = context[start : start + len(text)]
    if start >= len(context):
        where = f"; the text is at {found[0]}" if found else ""
        return (
            f"answer_start {start} is past the end of the context ({len(context)} characters){where}; "
            "fix answer_start (an answer past the context would train as a no-answer example)"
        )
    if found:
        best = min(found, key=lambda i: abs(i - start))
        shift = best - start
        return (
            f"answer {text!r} at answer_start={start} is off by {shift:+d} (context there: {got!r}); "
            f"set answer_start to {best}"
        )
    lowered = context.lower().find(text.lower())
    hint = f" (it appears with other case or spacing at {lowered})" if lowered >= 0 else ""
    return (
        f"answer {text!r} is not in the context{hint} (context at answer_start={start}: {got!r}); "
        "fix the answer text or drop the row"
    )


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
