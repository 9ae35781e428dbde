#!/usr/bin/env python3
"""Independent reader of a snapex export on local disk: Python's gzip + pymongo's bson.

Usage: read_export.py PREFIX_DIR

PREFIX_DIR is an export prefix directory (the one holding `<db>/<coll>/<rs>.<n>.json.gz`,
`metadata.json`, `.manifest.json`, `.complete`), or any directory above data files.

Every `*.json.gz` data file below PREFIX_DIR is read with `gzip` (all gzip members), split on
"\\n", and each line is decoded with
`bson.json_util.loads(line, json_options=CANONICAL_JSON_OPTIONS)` (datetimes outside Python's
range kept as `DatetimeMS`) and re-encoded with `bson.encode`. Nothing of snapex is used, so
this checks the files against the format, not against snapex's own idea of it.

Output (stdout), one JSON object, keys sorted:

{
  "format": "snapex-read-export/1",
  "files": [                                   # in read order (see below)
    {"path": "db/coll/rs0.0.json.gz",         # relative to PREFIX_DIR, "/" separated
     "namespace": "db.coll", "replicaSet": "rs0", "chunk": 0,
     "documents": 3, "jsonBytes": 123, "gzBytes": 99}
  ],
  "collections": {
    "db.coll": {
      "documents": 3, "bsonBytes": 456, "sha256": "<hex>",
      "replicaSets": {"rs0": {"documents": 3, "bsonBytes": 456, "sha256": "<hex>"}}
    }
  }
}

Read order: files sorted by (namespace, replicaSet, chunk) with `chunk` compared as a
number (rs0.10 after rs0.9). `replicaSets.<rs>.sha256` is the SHA-256 of the concatenated
re-encoded BSON documents of that replica set's files in chunk order and line order: equal to
the SHA-256 of the source collection's `.bson` (one replica set's dump) when the export is
lossless and keeps document order. `collections.<ns>.sha256` concatenates the replica sets in
name order. Namespace = the data file's directory relative to PREFIX_DIR, first segment the
database and the rest the collection, joined with ".".

Known limits of this reader (python's bson, not snapex): a document whose fields repeat a
name, or a `{"$ref", "$id"}` subdocument with extra fields before `$id`, does not re-encode
to the same bytes.

Exit status: 0 on success; 1 with a message on stderr naming the file and line on the first
problem (truncated gzip, invalid UTF-8, an empty line, a last line without "\\n", invalid
Extended JSON, a file name not of the form <rs>.<n>.json.gz).
"""

import gzip
import hashlib
import json
import os
import re
import sys

import bson
from bson.json_util import CANONICAL_JSON_OPTIONS, DatetimeConversion, loads

FORMAT = "snapex-read-export/1"
DATA_NAME = re.compile(r"^(?P<rs>.+)\.(?P<chunk>\d+)\.json\.gz$")
JSON_OPTIONS = CANONICAL_JSON_OPTIONS.with_options(
    datetime_conversion=DatetimeConversion.DATETIME_AUTO
)


class ReadError(Exception):
    pass


def data_files(root):
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if not name.endswith(".json.gz"):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            m = DATA_NAME.match(name)
            parts = rel.split("/")
            if m is None or len(parts) < 3:
                raise ReadError(f"{rel}: not a data file name <db>/<coll>/<rs>.<n>.json.gz")
            namespace = parts[0] + "." + "/".join(parts[1:-1])
            found.append((namespace, m.group("rs"), int(m.group("chunk")), rel, full))
    found.sort(key=lambda f: (f[0], f[1], f[2]))
    return found


def read_file(rel, full, on_document):
    documents = 0
    json_bytes = 0
    try:
        with gzip.open(full, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                json_bytes += len(raw)
                if not raw.endswith(b"\n"):
                    raise ReadError(f"{rel}: line {lineno}: last line does not end in \\n")
                line = raw[:-1]
                if not line:
                    raise ReadError(f"{rel}: line {lineno}: empty line")
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ReadError(f"{rel}: line {lineno}: invalid utf-8: {e}") from None
                try:
                    doc = loads(text, json_options=JSON_OPTIONS)
                except Exception as e:  # json_util raises several types
                    raise ReadError(f"{rel}: line {lineno}: invalid extended json: {e}") from None
                if not isinstance(doc, dict):
                    raise ReadError(f"{rel}: line {lineno}: not a document")
                on_document(bson.encode(doc))
                documents += 1
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ReadError(f"{rel}: gzip: {e}") from None
    return documents, json_bytes


def read_export(root):
    files = []
    per_rs = {}  # (namespace, rs) -> [documents, bson_bytes, sha256]
    per_ns = {}  # namespace -> sha256; files are read in (namespace, rs, chunk) order, so
    #              this is the concatenation of the replica sets in name order
    for namespace, rs, chunk, rel, full in data_files(root):
        acc = per_rs.setdefault((namespace, rs), [0, 0, hashlib.sha256()])
        ns_hash = per_ns.setdefault(namespace, hashlib.sha256())

        def on_document(b, acc=acc, ns_hash=ns_hash):
            acc[1] += len(b)
            acc[2].update(b)
            ns_hash.update(b)

        documents, json_bytes = read_file(rel, full, on_document)
        acc[0] += documents
        files.append(
            {
                "path": rel,
                "namespace": namespace,
                "replicaSet": rs,
                "chunk": chunk,
                "documents": documents,
                "jsonBytes": json_bytes,
                "gzBytes": os.path.getsize(full),
            }
        )

    collections = {}
    for namespace, rs in sorted(per_rs):
        documents, size, digest = per_rs[(namespace, rs)]
        coll = collections.setdefault(
            namespace,
            {
                "documents": 0,
                "bsonBytes": 0,
                "sha256": per_ns[namespace].hexdigest(),
                "replicaSets": {},
            },
        )
        coll["replicaSets"][rs] = {
            "documents": documents,
            "bsonBytes": size,
            "sha256": digest.hexdigest(),
        }
        coll["documents"] += documents
        coll["bsonBytes"] += size
    return {"format": FORMAT, "files": files, "collections": collections}


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.stderr.write("usage: read_export.py PREFIX_DIR\n")
        return 2
    try:
        result = read_export(sys.argv[1])
    except ReadError as e:
        sys.stderr.write(f"read_export: {e}\n")
        return 1
    json.dump(result, sys.stdout, sort_keys=True, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
