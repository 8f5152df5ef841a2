"""Validates report.json files against docs/report.schema.json (JSON Schema 2020-12).

Usage: python3 validate_schema.py SCHEMA REPORT.json...
"""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1], encoding="utf-8"))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    errors = list(validator.iter_errors(json.load(open(path, encoding="utf-8"))))
    for e in errors[:10]:
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}", file=sys.stderr)
    print(f"{'FAIL' if errors else 'ok  '} {path}: {len(errors)} schema errors")
    bad += bool(errors)
sys.exit(1 if bad else 0)
