//! Real answers checked against the OpenAPI document that describes them: a small
//! validator of the JSON Schema the document uses (always), and the reference tools
//! `openapi-spec-validator` and `jsonschema` from Python when they are installed
//! (`.ci/run` installs them and sets `HEDUI_REQUIRE_OPENAPI_VALIDATOR=1`).

#![allow(dead_code)]

use serde_json::Value;

/// One answer of the server: the operation, its status and its body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// The operationId it answered.
    pub operation: String,
    /// Its HTTP status.
    pub status: String,
    /// Its content type (without parameters).
    pub content_type: String,
    /// The body (one line of it for JSON Lines).
    pub body: Value,
}

/// Every operation of `doc`: (method, path, operation).
pub fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.clone(), path.clone(), op));
        }
    }
    out
}

/// The schema `doc` gives the answer `status` of `operation` in `content_type`.
pub fn response_schema<'a>(
    doc: &'a Value,
    operation: &str,
    status: &str,
    content_type: &str,
) -> Result<&'a Value, String> {
    let op = operations(doc)
        .into_iter()
        .find(|(_, _, op)| op["operationId"] == operation)
        .map(|(_, _, op)| op)
        .ok_or_else(|| format!("no operation {operation}"))?;
    let response = &op["responses"][status];
    if response.is_null() {
        return Err(format!("{operation} does not document status {status}"));
    }
    let schema = &response["content"][content_type]["schema"];
    if schema.is_null() {
        return Err(format!(
            "{operation} {status} has no schema for {content_type}: {response}"
        ));
    }
    Ok(schema)
}

/// Checks `value` against `schema` (refs into `doc`): the problems, by JSON path. Every
/// key of an object must be a documented property when the schema lists properties.
pub fn check(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(doc, schema, value, "$", true, &mut problems);
    problems
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a ref outside components: {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "{r} is not in components.schemas");
            resolve(doc, target)
        }
        None => schema,
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The property names `schema` and its allOf parts list.
fn listed(doc: &Value, schema: &Value, into: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    into.extend(
        schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone()),
    );
    for part in schema["allOf"].as_array().into_iter().flatten() {
        listed(doc, part, into);
    }
}

/// Checks `v` against `schema`; `strict`: keys no property lists are problems (off for
/// the parts of an allOf, where another part may list them: the whole is checked).
fn walk(doc: &Value, schema: &Value, v: &Value, at: &str, strict: bool, out: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        walk(doc, part, v, at, false, out);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            let fits = alts
                .iter()
                .filter(|s| {
                    let mut p = Vec::new();
                    walk(doc, s, v, at, strict, &mut p);
                    p.is_empty()
                })
                .count();
            if fits == 0 || (key == "oneOf" && fits > 1) {
                out.push(format!("{at}: {v} fits {fits} of {key} {schema}"));
            }
        }
    }
    let t = type_of(v);
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !allowed.is_empty()
        && !allowed
            .iter()
            .any(|a| *a == t || (*a == "number" && t == "integer"))
    {
        out.push(format!(
            "{at}: a {t} ({v}) where the document says {allowed:?}"
        ));
        return;
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            out.push(format!("{at}: {v} is not one of {e:?}"));
        }
    }
    match v {
        Value::Object(map) => {
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap_or_default();
                if !map.contains_key(r) {
                    out.push(format!("{at}: the required {r} is missing"));
                }
            }
            let mut names = Vec::new();
            listed(doc, schema, &mut names);
            let props = schema["properties"].as_object();
            for (k, item) in map {
                let here = format!("{at}.{k}");
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    walk(doc, s, item, &here, true, out);
                } else if schema["additionalProperties"].is_object() {
                    walk(doc, &schema["additionalProperties"], item, &here, true, out);
                } else if schema["additionalProperties"] == false {
                    out.push(format!("{here}: not allowed"));
                } else if strict && !names.is_empty() && !names.contains(k) {
                    out.push(format!("{here}: a key the document does not describe"));
                }
            }
        }
        Value::Array(items) => {
            if schema["items"].is_object() {
                for (i, item) in items.iter().enumerate() {
                    walk(
                        doc,
                        &schema["items"],
                        item,
                        &format!("{at}[{i}]"),
                        true,
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}

/// Runs the reference validators on `doc` and `samples` when Python has them (the
/// interpreter `HEDUI_PYTHON`, else `python3`): `Ok(true)` when they passed, `Ok(false)`
/// when they are not installed, `Err` with their report when they found problems.
pub fn reference_check(doc: &Value, samples: &[Sample]) -> Result<bool, String> {
    let python = std::env::var("HEDUI_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let doc_path = dir.path().join("openapi.json");
    let samples_path = dir.path().join("samples.json");
    std::fs::write(&doc_path, doc.to_string()).map_err(|e| e.to_string())?;
    std::fs::write(
        &samples_path,
        serde_json::to_string(samples).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/openapi_check.py"
    );
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&doc_path)
        .arg(&samples_path)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(_) => return Ok(false),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => Ok(true),
        Some(3) => Ok(false),
        _ => Err(text),
    }
}
