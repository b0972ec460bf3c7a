"""The reference check of hedui's OpenAPI document (called by tests/api.rs).

    openapi_check.py openapi.json samples.json

Validates the document with openapi-spec-validator, then every sample answer
({"operation", "status", "content_type", "body"}) against the schema the document gives
it, with jsonschema (Draft 2020-12, the dialect of OpenAPI 3.1). Exit 0: all valid;
1: problems (printed); 3: the validators are not installed.
"""

import json
import sys

try:
    import jsonschema
    from openapi_spec_validator import validate
except ImportError as e:  # not installed: the caller decides whether that is allowed
    print(f"not installed: {e}")
    sys.exit(3)


def main() -> int:
    doc = json.load(open(sys.argv[1], encoding="utf-8"))
    samples = json.load(open(sys.argv[2], encoding="utf-8"))
    problems = []
    try:
        validate(doc)
    except Exception as e:  # the validator's own error type varies by version
        problems.append(f"the document is not valid OpenAPI: {e}")
    ops = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ops[op["operationId"]] = op
    for s in samples:
        op = ops.get(s["operation"])
        if op is None:
            problems.append(f"no operation {s['operation']}")
            continue
        try:
            schema = op["responses"][s["status"]]["content"][s["content_type"]]["schema"]
        except KeyError:
            problems.append(f"{s['operation']} {s['status']}: no schema for {s['content_type']}")
            continue
        # The refs point at #/components/…: the schema is checked inside a root that has them.
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": doc.get("components", {}), "allOf": [schema]}
        v = jsonschema.Draft202012Validator(root)
        for err in v.iter_errors(s["body"]):
            problems.append(f"{s['operation']} {s['status']}: {err.message} at {list(err.absolute_path)}")
    for p in problems:
        print(p)
    print(f"{len(samples)} answers checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
