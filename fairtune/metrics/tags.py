"""Entity tag conventions shared by NER training, augmentation and the NER probes: one definition each."""

from __future__ import annotations

#: entity types that name a person
PERSON_TYPES = frozenset({"per", "person", "pers", "persons", "people"})
#: tag prefixes of the IOB / IOB2 / IOBES / BILOU schemes, in label-sorting order
PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "L": 2, "S": 3, "U": 3}


def split_tag(tag: str) -> tuple[str, str]:
    """("B", "person") for "B-person" or "B_person"; ("O", "") for O and anything without a known prefix."""
    if len(tag) > 2 and tag[1] in "-_" and tag[0].upper() in PREFIX_ORDER:
        return tag[0].upper(), tag[2:]
    return "O", ""


def is_person_type(entity_type: str) -> bool:
    """Whether an entity type names a person (PER, PERSON, person, pers, ...)."""
    return entity_type.lower() in PERSON_TYPES
