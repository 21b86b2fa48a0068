"""The sweep file's declaration as documents: the JSON Schema `fdp-sweep schema` prints for editors
(`json_schema`) and the table of keys in docs/sweeps.md (`keys_markdown`, `make docs`), both read off
`orchestrator.spec.schema.SweepFile`."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.spec.schema import DATA_KEYS, MERGED_PROTOCOL, VALUE_SCHEMAS, SweepFile


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a sweep file (draft 2020-12), for editors (`fdp-sweep schema`); it takes
    what the validator takes before its own types: one variant as a bare name, an empty block."""
    out = _schema()
    props = out["properties"]
    v = props["variants"]  # a list of names, or one name
    array = {k: v.pop(k) for k in list(v) if k in ("type", "items", "minItems", "uniqueItems")}
    v["anyOf"] = [array, array["items"]]
    for key in ("grid", "overrides", "resources", "tracking", "smoke"):  # `key:` with nothing under it
        inner = {k: props[key].pop(k) for k in list(props[key]) if k not in ("description", "default", "title")}
        props[key]["anyOf"] = [inner, {"type": "null"}]
    return out


def _schema() -> dict[str, Any]:
    """The schema as the types declare it (the docs table reads it)."""
    out = SweepFile.model_json_schema()
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = "fdp-sweep sweep file"
    # what the types cannot say alone: the data of one experiment go at the top level, or in a list
    out["if"] = {"required": ["experiments"]}
    out["then"] = {"not": {"anyOf": [{"required": [k]} for k in DATA_KEYS]}}
    out["else"] = {"required": ["dataset", "setting"]}
    out["allOf"] = [
        {"not": {"required": ["steps", "overrides"], "properties": {"overrides": {"required": ["train.steps"]}}}},
        *({"if": {"required": ["protocol"], "properties": {"protocol": {"const": p}}},
           "then": {"properties": {"dataset": {"const": d}}}} for d, p in MERGED_PROTOCOL.items()),
        {"if": {"not": {"required": ["protocol"], "properties": {"protocol": {"const": "cross"}}}},
         "then": {"not": {"required": ["test_dataset"]}}},
    ]
    return out


def keys_markdown() -> str:
    """The table of the keys of a sweep file, read off the schema (docs/sweeps.md)."""
    schema = _schema()
    defs = schema["$defs"]
    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]

    def walk(s: dict[str, Any], prefix: str) -> None:
        for name, p in s["properties"].items():
            if name in VALUE_SCHEMAS:
                continue  # the smoke block's dotted config keys: one row, below
            ref, tail = _block_ref(p)
            what = p.get("description") or (defs[ref].get("description", "") if ref else "")
            default = ("required" if name in s.get("required", ()) else "" if ref and not tail or p.get("default") is None
                       else f"`{json.dumps(p['default'])}`")
            rows.append(f"| `{prefix}{name}{tail}` | {_type_text(p)} | {default} | {' '.join(what.split())} |")
            if ref:
                walk(defs[ref], f"{prefix}{name}{tail}.")
    walk(schema, "")
    rows.append("| `smoke.<config key>` | per `fdp.config` | | any dotted config key: an override applied with --smoke |")
    return "\n".join(rows) + "\n"


def _block_ref(p: dict[str, Any]) -> tuple[str | None, str]:
    """(the $defs name of the block a property holds, "" / "[i]" / ".<key>" for one / a list / a mapping)."""
    for b in p.get("anyOf", [p]):
        for sub, tail in ((b, ""), (b.get("items", {}), "[i]"), (b.get("additionalProperties") or {}, ".<key>")):
            if isinstance(sub, dict) and "$ref" in sub:
                return sub["$ref"].rsplit("/", 1)[-1], tail
    return None, ""


def _type_text(p: dict[str, Any]) -> str:
    out = []
    for b in p.get("anyOf", [p]):
        if "enum" in b:
            out.append(" \\| ".join(f"`{e if e else chr(34) * 2}`" if isinstance(e, str) else f"`{json.dumps(e)}`"
                                     for e in b["enum"]) if len(b["enum"]) <= 6 else "name")
        elif "const" in b:
            out.append(f"`{json.dumps(b['const'])}`")
        elif "$ref" in b or b.get("type") == "object":
            out.append("mapping")
        elif b.get("type") == "array":
            out.append(f"list of {_type_text(b.get('items', {})) or 'values'}")
        elif b.get("type") in ("integer", "number"):
            bound = next((f" {op} {b[k]:g}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">")) if k in b), "")
            out.append(f"{b['type']}{bound}" + (f", <= {b['maximum']:g}" if "maximum" in b else ""))
        elif b.get("type") not in (None, "null"):
            out.append(b["type"])
    return " or ".join(dict.fromkeys(out))
