//! A small JSON Schema (draft-07) interpreter for the keywords the template schemas use: `type`,
//! `required`, `properties`, `additionalProperties` (schema form), `items`, `minItems`, `minimum`,
//! `enum`, `pattern` and `oneOf`. The schemas are data (`schema/*.json`); this module only walks
//! them, so the OpenELIS schema is used as shipped (with the one change listed in
//! `docs/templates.md`).

use std::sync::OnceLock;

use serde_json::Value;

/// One schema violation: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) path: String,
    pub(crate) reason: String,
}

fn parsed(text: &'static str, cell: &'static OnceLock<Value>) -> &'static Value {
    // The schemas are compiled in and tested; an unparsable one is a build defect, which the
    // `schemas_parse` test catches. Fall back to an empty schema rather than panicking.
    cell.get_or_init(|| serde_json::from_str(text).unwrap_or(Value::Bool(true)))
}

/// The OpenELIS template schema (draft-07), as shipped by the mock plus `XML` in `file_config.format`.
pub const TEMPLATE_SCHEMA: &str = include_str!("../schema/template.schema.json");
/// Keys the mock reads but its schema does not declare (`qc_controls[].sd`, `skipRows`, ...).
pub const EXTENSIONS_SCHEMA: &str = include_str!("../schema/extensions.schema.json");

pub(crate) fn template_schema() -> &'static Value {
    static CELL: OnceLock<Value> = OnceLock::new();
    parsed(TEMPLATE_SCHEMA, &CELL)
}

pub(crate) fn extensions_schema() -> &'static Value {
    static CELL: OnceLock<Value> = OnceLock::new();
    parsed(EXTENSIONS_SCHEMA, &CELL)
}

/// Validates a template against both schemas; violations in document order.
pub(crate) fn validate_template(instance: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    validate(template_schema(), instance, "$", &mut out);
    validate(extensions_schema(), instance, "$", &mut out);
    out
}

/// Validates one derived field (from a profile) against the schema's field item schema.
pub(crate) fn validate_field(field: &Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(item) = template_schema().pointer("/properties/fields/items") {
        validate(item, field, path, &mut out);
    }
    out
}

/// Whether the schema allows `category` as an analyzer's category.
pub(crate) fn is_analyzer_category(category: &str) -> bool {
    template_schema()
        .pointer("/properties/analyzer/properties/category/enum")
        .and_then(Value::as_array)
        .is_some_and(|allowed| allowed.iter().any(|c| c.as_str() == Some(category)))
}

fn type_name(v: &Value) -> &'static str {
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

fn is_type(v: &Value, wanted: &str) -> bool {
    match wanted {
        "integer" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "number" => v.is_number(),
        other => type_name(v) == other,
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

fn child(path: &str, key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.is_empty() {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_owned()))
    }
}

fn validate(schema: &Value, v: &Value, path: &str, out: &mut Vec<Violation>) {
    let Value::Object(s) = schema else { return };
    let mut push = |reason: String| {
        out.push(Violation {
            path: path.to_owned(),
            reason,
        })
    };

    if let Some(t) = s.get("type") {
        let wanted: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !wanted.is_empty() && !wanted.iter().any(|w| is_type(v, w)) {
            // `null` is its own value: "found null", not "found null null".
            let found = if v.is_null() {
                "null".to_owned()
            } else {
                format!("{} {}", type_name(v), short(v))
            };
            push(format!("expected {}, found {found}", wanted.join(" or ")));
            return; // Further keywords would only repeat the type error.
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(v)
    {
        let list: Vec<String> = options.iter().map(short).collect();
        push(format!("{} is not one of {}", short(v), list.join(", ")));
    }
    if let (Some(Value::String(pattern)), Value::String(text)) = (s.get("pattern"), v)
        && !crate::pattern::matches(pattern, text)
    {
        push(format!("{} does not match pattern {pattern}", short(v)));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        push(format!("{n} is less than the minimum {min}"));
    }
    if let Value::Array(items) = v {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            push(format!(
                "needs at least {min} item(s), found {}",
                items.len()
            ));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(item_schema, item, &format!("{path}[{i}]"), out);
            }
        }
    }
    if let Value::Object(map) = v {
        if let Some(Value::Array(required)) = s.get("required") {
            for key in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(key) {
                    out.push(Violation {
                        path: path.to_owned(),
                        reason: format!("missing required key {key:?}"),
                    });
                }
            }
        }
        let properties = s.get("properties").and_then(Value::as_object);
        for (key, value) in map {
            match properties.and_then(|p| p.get(key)) {
                Some(prop) => validate(prop, value, &child(path, key), out),
                None => {
                    if let Some(extra @ Value::Object(_)) = s.get("additionalProperties") {
                        validate(extra, value, &child(path, key), out);
                    }
                }
            }
        }
    }
    if let Some(Value::Array(branches)) = s.get("oneOf") {
        let matched: Vec<usize> = branches
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                let mut scratch = Vec::new();
                validate(b, v, path, &mut scratch);
                scratch.is_empty()
            })
            .map(|(i, _)| i)
            .collect();
        if matched.len() != 1 {
            let describe = |b: &Value| match b.get("required") {
                Some(Value::Array(keys)) => keys
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                _ => short(b),
            };
            let names: Vec<String> = branches.iter().map(describe).collect();
            let found = if matched.is_empty() {
                "none"
            } else {
                "more than one"
            };
            out.push(Violation {
                path: path.to_owned(),
                reason: format!("needs exactly one of {}; found {found}", names.join(" or ")),
            });
        }
    }
}
