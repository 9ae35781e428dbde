#!/usr/bin/env python3
"""Independent reader of snapex data files with DuckDB, as a data team would query them.

Usage: duckdb_read.py PATH...    (files, or directories searched for *.json.gz)

For each file, in argument order (directories expanded in sorted order):
- `rows`: count(*) of `read_json(file, format='newline_delimited')` — DuckDB's own schema
  detection over the whole file (sample_size=-1), the call people actually write;
- `objects`: count(*) of `read_ndjson_objects(file)` — one row per line, each parsed as JSON.
Gzip is detected from the .gz extension.

Prints one JSON object on stdout:
  {"duckdb": "<version>", "files": [{"path": "...", "rows": 3, "objects": 3}, ...]}
Exits 1 with the DuckDB error on stderr when a file cannot be read.
"""

import json
import os
import sys

import duckdb


def expand(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            found = []
            for dirpath, _dirs, names in os.walk(p):
                found += [os.path.join(dirpath, n) for n in names if n.endswith(".json.gz")]
            out += sorted(found)
        else:
            out.append(p)
    return out


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: duckdb_read.py PATH...\n")
        return 2
    con = duckdb.connect()
    files = []
    for path in expand(sys.argv[1:]):
        try:
            rows = con.execute(
                "SELECT count(*) FROM read_json(?, format = 'newline_delimited', sample_size = -1)",
                [path],
            ).fetchone()[0]
            objects = con.execute(
                "SELECT count(*) FROM read_ndjson_objects(?)", [path]
            ).fetchone()[0]
        except duckdb.Error as e:
            sys.stderr.write(f"duckdb_read: {path}: {e}\n")
            return 1
        files.append({"path": path, "rows": rows, "objects": objects})
    json.dump({"duckdb": duckdb.__version__, "files": files}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
