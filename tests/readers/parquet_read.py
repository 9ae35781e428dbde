#!/usr/bin/env python3
"""Independent readers of a snapex Parquet export: pyarrow, DuckDB and polars.

Usage: parquet_read.py EXPORT_PREFIX_DIR DB COLL SOURCE_BSON [--readers pyarrow,duckdb,polars]

Reads `<prefix>/<db>/<coll>/*.parquet` (in `<rs>.<n>` order) with each reader, rebuilds every
row into a document under the mapping README "Parquet export" documents (read from the
collection's `.schema.json`, never from snapex's code), and compares it, document by document
and in order, with the documents of SOURCE_BSON (a mongodump `.bson` file) as pymongo decodes
them. Types and field order count: an int32 is not an int64, {a, b} is not {b, a}. SOURCE may
instead be a snapex JSON export's data file (`*.json.gz`, canonical Extended JSON, one
document a line): the documents are then that export's, as for a time-series collection,
whose source file holds buckets but whose export holds measurements.

Prints one JSON object: {"documents": N, "readers": {"pyarrow": {"rows": N, "same": N,
"first_difference": null | {...}}, ...}, "duckdb_count": N}. Exits 0 when it could read.
"""

import datetime
import glob
import gzip
import json
import os
import re
import sys

import bson
import pyarrow as pa
import pyarrow.parquet as pq
from bson.binary import Binary
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.json_util import JSONMode, JSONOptions, loads
from bson.objectid import ObjectId

CODEC = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_MS)
JOPTS = JSONOptions(json_mode=JSONMode.CANONICAL, datetime_conversion=DatetimeConversion.DATETIME_MS)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def files_of(folder):
    def key(path):
        m = re.match(r"(.*)\.(\d+)\.parquet$", os.path.basename(path))
        return (m.group(1), int(m.group(2))) if m else (path, 0)

    return sorted(glob.glob(os.path.join(folder, "*.parquet")), key=key)


def map_timestamps(t, to):
    """The type with every timestamp replaced by `to` (nested ones too)."""
    if pa.types.is_timestamp(t):
        return to
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, map_timestamps(f.type, to), f.nullable) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(pa.field(t.value_field.name, map_timestamps(t.value_type, to)))
    return t


def to_rows(table):
    """Rows with every timestamp as int64 milliseconds: BSON dates outside the years 1..9999
    have no Python datetime, and readers differ in unit (DuckDB gives microseconds)."""
    for to in (pa.timestamp("ms", tz="UTC"), pa.int64()):
        schema = pa.schema(
            [pa.field(f.name, map_timestamps(f.type, to), f.nullable) for f in table.schema]
        )
        table = table.cast(schema)
    return table.to_pylist()


def value(field, v):
    """A row value back to the BSON value (as pymongo decodes it) under the field's mapping."""
    bson_type, encoding = field["bson"], field.get("encoding")
    if v is None:
        return None  # BSON null (the caller drops missing fields)
    if bson_type == "any":
        return loads(v, json_options=JOPTS)
    if bson_type == "int":
        return int(v)
    if bson_type == "long":
        return Int64(v)
    if bson_type == "double":
        return float(v)
    if bson_type in ("string", "bool"):
        return v
    if bson_type == "objectId":
        return ObjectId(v)
    if bson_type == "date":
        if isinstance(v, datetime.datetime):
            v = (v - EPOCH) // datetime.timedelta(milliseconds=1)
        return DatetimeMS(int(v))
    if bson_type == "binData":
        return bytes(v) if field["subtype"] == 0 else Binary(bytes(v), field["subtype"])
    if bson_type == "decimal":
        return Decimal128(v if encoding == "decimal text" else str(v))
    if bson_type == "object":
        return document(field["fields"], v)
    if bson_type == "array":
        return [value(field["element"], e) for e in v]
    raise ValueError(f"unknown mapping {field}")


def document(fields, row):
    out = {}
    for field in fields:
        v = row.get(field["name"])
        if v is None and field["nullMeans"] == "missing":
            continue
        out[field["name"]] = value(field, v)
    return out


def canon(v):
    """Type-and-order-exact form for comparison, where bytes differ only by a NaN's bits (a
    double's or a decimal's: Extended JSON has one NaN, so do the JSON columns)."""
    if isinstance(v, dict):
        return ("doc", [(k, canon(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("array", [canon(x) for x in v])
    if isinstance(v, float) and v != v:
        return ("float", "nan")
    if isinstance(v, Decimal128):
        # A decimal is its text, as in Extended JSON: NaN's sign and payload bits have none.
        return ("Decimal128", str(v))
    return (type(v).__name__, v)


def compare(name, rows, schema, source):
    fields = schema["fields"]
    whole = len(fields) == 1 and fields[0]["name"] == "document" and fields[0]["bson"] == "any" \
        and fields[0]["nullMeans"] == "never null" and schema.get("wholeDocument")
    same, first = 0, None
    for i, (row, src) in enumerate(zip(rows, source)):
        got = loads(row["document"], json_options=JOPTS) if whole else document(fields, row)
        # Equal as BSON bytes: types and field order count, and pymongo's own readings of a
        # document (a {$ref, $id} document decodes as DBRef) encode back the same.
        if bson.encode(got) == bson.encode(src) or canon(got) == canon(src):
            same += 1
        elif first is None:
            first = {"index": i, "got": repr(got)[:2000], "want": repr(src)[:2000]}
    return {"rows": len(rows), "same": same, "first_difference": first}


def main():
    # Documents nest up to 100 levels, and this rebuilds them recursively.
    sys.setrecursionlimit(20000)
    prefix, db, coll, source_path = sys.argv[1:5]
    readers = ["pyarrow", "duckdb", "polars"]
    if len(sys.argv) > 6 and sys.argv[5] == "--readers":
        readers = sys.argv[6].split(",")
    folder = os.path.join(prefix, db, coll)
    with open(os.path.join(folder, ".schema.json")) as fh:
        schema = json.load(fh)
    if source_path.endswith(".json.gz"):
        with gzip.open(source_path, "rt", encoding="utf-8") as fh:
            source = [loads(line, json_options=JOPTS) for line in fh if line.strip()]
    else:
        with open(source_path, "rb") as fh:
            source = bson.decode_all(fh.read(), CODEC)
    files = files_of(folder)
    out = {"documents": len(source), "files": len(files), "readers": {}}
    if not files:
        out["readers"] = {r: {"rows": 0, "same": 0, "first_difference": None} for r in readers}
        print(json.dumps(out))
        return 0
    if "pyarrow" in readers:
        table = pa.concat_tables([pq.read_table(f) for f in files])
        out["readers"]["pyarrow"] = compare("pyarrow", to_rows(table), schema, source)
    if "duckdb" in readers:
        import duckdb

        con = duckdb.connect()
        out["duckdb_count"] = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0]
        # DuckDB's own types back as Arrow, file by file to keep the order.
        tables = [con.execute("SELECT * FROM read_parquet(?)", [f]).fetch_arrow_table() for f in files]
        out["readers"]["duckdb"] = compare("duckdb", to_rows(pa.concat_tables(tables)), schema, source)
    if "polars" in readers:
        import polars as pl

        tables = [pl.read_parquet(f).to_arrow() for f in files]
        out["readers"]["polars"] = compare("polars", to_rows(pa.concat_tables(tables)), schema, source)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
