"""Maintainer script: rebuild the name and identity-term lexicons from the public sources in ../shared/data.

Not imported at run time (the package only reads the JSON files written here). Run it from the repository root:
`python fairtune/augment/lexicons/_build.py [DATA_DIR]`. `gender.json` is curated by hand and not touched;
`neutral.json` is curated by hand except its `names` list.
The curation choices (thresholds, homographs, plural forms) live here so that a rebuild gives the same files.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Names that are also common English words, places, months, brands or religious terms: never swapped in free
# text (a sentence-initial "Will", "May" or "Paris" is not a person); inside a person-typed NER span they are.
HOMOGRAPHS = """
april august may june july autumn summer winter dawn eve noel christmas easter paris jordan virginia georgia
carolina florence victoria charlotte austin dallas houston denver chelsea brooklyn sydney india china asia
africa kenya israel lincoln jackson madison savannah phoenix dakota indiana montana nevada aurora camden orlando
cleveland salem regina alexandria adelaide helena lourdes hollis troy cairo vienna geneva berlin london chester
kent devon shelby marion lafayette raleigh columbus trenton will bill mark grace hope faith joy rose lily daisy
ivy iris holly heather hazel ginger pearl ruby amber crystal rich frank grant pat sue art ray rob don gene jack
jean bob buck carol bud chance chase cliff clay dale dean drew earl forest glen guy hunter king lane lee major
mason miles page penny carter cooper parker porter price reed rod roman rusty sandy skip spencer sterling stone
wade ward wood young christian dusty lance sonny norman marshall jay sky val bell belle candy destiny precious
misty sunny star storm cherry olive violet jasmine melody harmony honey angel bunny charity liberty trinity
essence unique jesus christ mary-kate dolly goldie patience prudence constance temperance verity mercy justice
honor honour sage river rain autumn ash rowan bo gay dick fanny willy brown black white green gray grey golden
silver baker bishop cook fisher hall hill long love little rice walker shepherd banks rivers brooks woods waters
bush ford young early french english irish welsh english winston beverly chuck sonny duke earnest ernest royal
prince princess queen lord judge deacon sargent hung dallas delta tulsa else
in an so my ma ok see sun song moon long king hang loan soon chin kit hue ha le tu su fe ka mi thu wan shin yen
bong fern opal fawn skye les von mac del
""".split()

# Census 1990: a name counts as one gender when that gender holds at least this share of its frequency.
GENDER_SHARE = 0.9
# Tzioumis 2018 / Census 2010: a name or surname joins a race group when the group holds at least this share.
RACE_SHARE = 50.0
RACE_COLUMNS = {"pctwhite": "white", "pctblack": "black", "pcthispanic": "hispanic", "pctapi": "asian"}
SURNAME_COLUMNS = {
    "PERCENT NON-HISPANIC OR LATINO WHITE ALONE": "white",
    "PERCENT NON-HISPANIC OR LATINO BLACK OR AFRICAN AMERICAN ALONE": "black",
    "PERCENT HISPANIC OR LATINO ORIGIN": "hispanic",
    "PERCENT NON-HISPANIC OR LATINO ASIAN AND NATIVE HAWAIIAN AND OTHER PACIFIC ISLANDER ALONE": "asian",
}

# Nationality plurals that are not the adjective + "s".
NATIONALITY_PLURALS = {
    "British": "British",
    "Chinese": "Chinese",
    "Burmese": "Burmese",
    "Danish": "Danes",
    "Finnish": "Finns",
    "French": "French",
    "Irish": "Irish",
    "Japanese": "Japanese",
    "Polish": "Poles",
    "Portuguese": "Portuguese",
    "Senegalese": "Senegalese",
    "Spanish": "Spaniards",
    "Swedish": "Swedes",
    "Swiss": "Swiss",
    "Turkish": "Turks",
    "Icelandic": "Icelanders",
    "Vietnamese": "Vietnamese",
    "Slovak": "Slovaks",
}
RELIGION_PLURALS = {"Jewish": "Jews"}


def _title(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _census_first(path: Path) -> dict[str, float]:
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[0].lower()] = float(parts[1])
    return out


def gendered_first_names(data: Path) -> tuple[list[str], list[str]]:
    """Female and male first names (Census 1990), each ranked by frequency; unisex names dropped."""
    female = _census_first(data / "name_lists" / "dist.female.first.txt")
    male = _census_first(data / "name_lists" / "dist.male.first.txt")
    fem, mal = [], []
    for name in set(female) | set(male):
        f, m = female.get(name, 0.0), male.get(name, 0.0)
        if not re.fullmatch(r"[a-z]+", name):
            continue
        if f / (f + m) >= GENDER_SHARE:
            fem.append((f, name))
        elif m / (f + m) >= GENDER_SHARE:
            mal.append((m, name))
    fem.sort(key=lambda t: (-t[0], t[1]))
    mal.sort(key=lambda t: (-t[0], t[1]))
    return [_title(n) for _, n in fem], [_title(n) for _, n in mal]


NYC_ETHNICITY = {"HISPANIC": "hispanic", "WHITE": "white", "BLACK": "black", "ASIAN": "asian"}
ETHNICITIES = ("white", "black", "hispanic", "asian")


def _tzioumis_groups(data: Path) -> dict[str, str]:
    """Title-cased first name -> race/ethnicity group whose share of bearers is at least RACE_SHARE (Tzioumis)."""
    out = {}
    with open(data / "name_lists" / "tzioumis2018_firstnames_by_race.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            name = _title(row["firstname"].strip())
            col = max(RACE_COLUMNS, key=lambda c: float(row[c] or 0))
            if float(row[col] or 0) >= RACE_SHARE:
                out[name] = RACE_COLUMNS[col]
    return out


def _nyc_groups(data: Path) -> dict[tuple[str, str], str]:
    """(Title-cased name, gender) -> the NYC birth ethnicity holding at least RACE_SHARE % of its births, 2011-2017.

    NYC Open Data "Popular Baby Names" (duplicate rows dropped; abbreviated ethnicity labels merged).
    """
    seen: set[tuple] = set()
    counts: dict[tuple[str, str], dict[str, int]] = {}
    with open(data / "name_lists" / "Popular_Baby_Names.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            name = _title(row["Child's First Name"].strip())
            gender = row["Gender"].strip().lower()
            eth = next(v for k, v in NYC_ETHNICITY.items() if row["Ethnicity"].strip().upper().startswith(k))
            key = (row["Year of Birth"].strip(), gender, eth, name)
            if key in seen:
                continue
            seen.add(key)
            cell = counts.setdefault((name, gender), {})
            cell[eth] = cell.get(eth, 0) + int(row["Count"])
    out = {}
    for key, cell in counts.items():
        eth, n = max(cell.items(), key=lambda kv: (kv[1], kv[0]))
        if 100.0 * n / sum(cell.values()) >= RACE_SHARE:
            out[key] = eth
    return out


def name_ethnicity(data: Path) -> dict[str, str]:
    """First name -> race/ethnicity block: the Tzioumis group (as in names_race.json), else `<group>_nyc`, the NYC
    birth ethnicity (kept apart, so a name that names_race knows never pairs with one it does not)."""
    fem, mal = gendered_first_names(data)
    tz, nyc = _tzioumis_groups(data), _nyc_groups(data)
    out = {}
    for names, gender in ((fem, "female"), (mal, "male")):
        for n in names:
            if n in tz:
                out[n] = tz[n]
            elif (n, gender) in nyc:
                out[n] = nyc[(n, gender)] + "_nyc"
    return out


def _gender_words() -> set[str]:
    """Every lower-cased word of the curated gender.json (a name that is one, as Beau or King, is left out)."""
    g = json.loads((HERE / "gender.json").read_text(encoding="utf-8"))
    pairs = g["pairs"].values() if isinstance(g["pairs"], dict) else [g["pairs"]]
    words = {w.lower() for block in pairs for pair in block for w in pair}
    words |= {e[0].lower() for e in g.get("one_way", [])} | {w.lower() for w in g.get("contextual", {})}
    return words


def build_names(data: Path) -> dict:
    fem, mal = gendered_first_names(data)
    gendered = _gender_words()  # the gender axis swaps these words; as names they would break the bijection
    fem, mal = [n for n in fem if n.lower() not in gendered], [n for n in mal if n.lower() not in gendered]
    homo = {_title(h) for h in HOMOGRAPHS}
    ethnicity = name_ethnicity(data)
    # Female and male names are paired by frequency rank *within* one race/ethnicity (a gender swap keeps the
    # name's likely race; names with no known group pair among themselves), and homographs pair with homographs,
    # so that the names swapped in free text (homographs are not) form a bijection: swapping twice is identity.
    blocks: dict[str, list] = {}
    for eth in (*ETHNICITIES, *(e + "_nyc" for e in ETHNICITIES), None):
        for is_homograph in (False, True):

            def keep(n: str, eth=eth, is_homograph=is_homograph) -> bool:
                return ethnicity.get(n) == eth and (n in homo) == is_homograph

            f, m = [n for n in fem if keep(n)], [n for n in mal if keep(n)]
            name = (eth or "unknown") + ("_homographs" if is_homograph else "")
            blocks[name] = [[m[i], f[i]] for i in range(min(len(f), len(m)))]
    paired = {n for pairs in blocks.values() for p in pairs for n in p}
    return {
        "axis": "names",
        "kind": "pairs",
        "description": (
            "US first names by gender (Census 1990; names whose gender share is under "
            f"{GENDER_SHARE:.0%} and names that are gender.json words, as Beau or King, are left out), female and male names paired by frequency rank within one "
            "race/ethnicity (Tzioumis 2018, as in names_race.json; `_nyc` blocks: names Tzioumis does not place, "
            "by NYC Popular Baby Names 2011-2017 birth ethnicity; a group holds at least "
            f"{RACE_SHARE:.0f}% of bearers), so that a gender swap keeps the name's likely race. Each block is one "
            "race/ethnicity (`unknown`: no group known; `_homographs`: names that are also words, paired among "
            "themselves). Each pair is written [male, female]."
        ),
        "columns": ["male", "female"],
        "capitalized_only": True,
        "pairs": blocks,
        "homographs": sorted({h for h in HOMOGRAPHS if _title(h) in paired}),
    }


def build_names_race(data: Path) -> dict:
    fem, mal = gendered_first_names(data)
    gender = {n: "female" for n in fem} | {n: "male" for n in mal}
    groups: dict[str, dict[str, list]] = {g: {"female": [], "male": [], "surname": []} for g in RACE_COLUMNS.values()}
    with open(data / "name_lists" / "tzioumis2018_firstnames_by_race.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            name = _title(row["firstname"].strip())
            if name not in gender or not re.fullmatch(r"[A-Za-z]+", name):
                continue
            col = max(RACE_COLUMNS, key=lambda c: float(row[c] or 0))
            if float(row[col] or 0) >= RACE_SHARE:
                groups[RACE_COLUMNS[col]][gender[name]].append((-int(row["obs"]), name))
    with open(data / "name_lists" / "census2010_top1000_surnames_by_race.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            name = _title(row["SURNAME"].strip())
            shares = {c: float(row[c]) if row[c] not in ("", "(S)") else 0.0 for c in SURNAME_COLUMNS}
            col = max(shares, key=shares.get)
            if shares[col] >= RACE_SHARE and re.fullmatch(r"[A-Za-z]+", name):
                groups[SURNAME_COLUMNS[col]]["surname"].append((int(row["RANK"]), name))
    out = {g: {slot: [n for _, n in sorted(v)] for slot, v in slots.items()} for g, slots in groups.items()}
    # A word that is both a first name and a surname (Davis, Charles) is kept as a first name only.
    first = {n for slots in out.values() for slot in ("female", "male") for n in slots[slot]}
    for slots in out.values():
        slots["surname"] = [n for n in slots["surname"] if n not in first]
    terms = {t for slots in out.values() for v in slots.values() for t in v}
    return {
        "axis": "names_race",
        "kind": "groups",
        "description": (
            "First names by race/ethnicity (Tzioumis 2018, names whose top group holds at least "
            f"{RACE_SHARE:.0f}% of bearers; gender from Census 1990) and surnames by race/ethnicity (Census 2010 "
            "top 1000, same threshold), ranked by frequency. A name maps to the same rank and slot in another group."
        ),
        "capitalized_only": True,
        "groups": out,
        "homographs": sorted(t for t in terms if t.lower() in set(HOMOGRAPHS)),
    }


def _bbq_vocabulary(data: Path, category: str) -> list[str]:
    with open(data / "bbq" / "templates" / "vocabulary.csv", newline="") as fh:
        return [
            r["Name"].strip()
            for r in csv.DictReader(fh)
            if r["Category"].strip() == category and r["Pilot_include"].strip() != "No"
        ]


def build_identity(data: Path, axis: str, category: str, plurals: dict[str, str]) -> dict:
    groups = {}
    for term in _bbq_vocabulary(data, category):
        plural = plurals.get(term, term + "s")
        groups[term.lower()] = {"singular": [term]} | ({"plural": [plural]} if plural != term else {})
    return {
        "axis": axis,
        "kind": "groups",
        "description": (
            f"{category} identity terms from the BBQ vocabulary (templates/vocabulary.csv, CC BY 4.0) with plural "
            "forms added by fairtune. Matched only when capitalized."
        ),
        "capitalized_only": True,
        "groups": groups,
        "homographs": [],
    }


def _dump(obj: dict, path: Path) -> None:
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    text = re.sub(
        r"\[\s*(\"[^\"\[\]]*\"(?:,\s*\"[^\"\[\]]*\")*)\s*\]",
        lambda m: "[" + re.sub(r'",\s+"', '", "', m.group(1)) + "]",
        text,
    )
    path.write_text(text + "\n", encoding="utf-8")


# Census 1990 first names borne about equally by women and men: the neutral names of mode `neutralize`.
NEUTRAL_SHARE = (0.3, 0.7)
NEUTRAL_COUNT = 20


def neutral_names(data: Path) -> list[str]:
    """The NEUTRAL_COUNT most frequent names whose female share is within NEUTRAL_SHARE (homographs left out)."""
    female = _census_first(data / "name_lists" / "dist.female.first.txt")
    male = _census_first(data / "name_lists" / "dist.male.first.txt")
    homo = set(HOMOGRAPHS)
    cands = []
    for name in set(female) & set(male):
        f, m = female[name], male[name]
        if NEUTRAL_SHARE[0] <= f / (f + m) <= NEUTRAL_SHARE[1] and name not in homo and re.fullmatch(r"[a-z]+", name):
            cands.append((-(f + m), name))
    return [_title(n) for _, n in sorted(cands)[:NEUTRAL_COUNT]]


def main(data: Path) -> None:
    neutral = json.loads((HERE / "neutral.json").read_text(encoding="utf-8"))  # curated; only `names` is rebuilt
    neutral["names"] = neutral_names(data)
    _dump(neutral, HERE / "neutral.json")
    _dump(build_names(data), HERE / "names.json")
    _dump(build_names_race(data), HERE / "names_race.json")
    _dump(build_identity(data, "religion", "Religion", RELIGION_PLURALS), HERE / "religion.json")
    _dump(build_identity(data, "nationality", "Nationality", NATIONALITY_PLURALS), HERE / "nationality.json")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
