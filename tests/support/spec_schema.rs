//! A tiny reader for the Atlas spec extract (`atlas-api/atlas-openapi-backup-export.yaml`):
//! component schemas' properties, types, refs and required fields, and [`validate`], which
//! checks a response body against one of them. Shared by the API test binaries.

use std::collections::HashMap;

use serde_json::Value;
// A tiny reader for the spec extract: component schemas' properties, types, refs, required.

#[derive(Debug, Default)]
pub struct Schema {
    pub props: HashMap<String, Prop>,
    pub required: Vec<String>,
    pub mapping: HashMap<String, String>,
}

#[derive(Debug, Default, Clone)]
pub struct Prop {
    ty: Option<String>,
    reference: Option<String>,
    items_ref: Option<String>,
}

fn spec_text() -> String {
    let path = super::shared_data().join("atlas-api/atlas-openapi-backup-export.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn ref_name(line: &str) -> Option<String> {
    let i = line.find("#/components/schemas/")?;
    Some(
        line[i + "#/components/schemas/".len()..]
            .trim_end_matches('\'')
            .trim_end_matches('"')
            .to_string(),
    )
}

pub fn schema(name: &str) -> Schema {
    let text = spec_text();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == format!("    {name}:"))
        .unwrap_or_else(|| panic!("schema {name} not in the spec extract"));
    let mut s = Schema::default();
    let mut section = "";
    let mut current: Option<String> = None;
    let mut in_items = false;
    for line in &lines[start + 1..] {
        if line.trim().is_empty() {
            continue;
        }
        let ind = indent(line);
        if ind <= 4 {
            break;
        }
        let t = line.trim();
        if ind == 6 {
            section = if t == "properties:" {
                "properties"
            } else if t == "required:" {
                "required"
            } else if t == "discriminator:" {
                "discriminator"
            } else {
                ""
            };
            continue;
        }
        match section {
            "properties" => {
                if ind == 8 && t.ends_with(':') {
                    let p = t.trim_end_matches(':').to_string();
                    s.props.insert(p.clone(), Prop::default());
                    current = Some(p);
                    in_items = false;
                } else if let Some(p) = current.as_ref().and_then(|p| s.props.get_mut(p)) {
                    if ind == 10 && t == "items:" {
                        in_items = true;
                    } else if ind == 10 && t.starts_with("type:") {
                        p.ty = Some(t["type:".len()..].trim().to_string());
                        in_items = false;
                    } else if ind == 10 && t.starts_with("$ref:") {
                        p.reference = ref_name(t);
                    } else if ind == 12 && in_items && t.starts_with("$ref:") {
                        p.items_ref = ref_name(t);
                    } else if ind == 10 {
                        in_items = false;
                    }
                }
            }
            "required" => {}
            "discriminator" => {
                if ind == 10
                    && let Some((k, v)) = t.split_once(':')
                    && let Some(r) = ref_name(v)
                {
                    s.mapping.insert(k.trim().to_string(), r);
                }
            }
            _ => {}
        }
    }
    // `required:` lists sit at indent 6 with `- name` items also at indent 6.
    let mut in_required = false;
    for line in &lines[start + 1..] {
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) <= 4 {
            break;
        }
        if indent(line) == 6 {
            let t = line.trim();
            if t == "required:" {
                in_required = true;
            } else if let Some(item) = t.strip_prefix("- ") {
                if in_required {
                    s.required.push(item.to_string());
                }
            } else {
                in_required = false;
            }
        }
    }
    s.required.sort();
    s.required.dedup();
    s
}

/// Checks `value` against the named schema: required fields present, no field the schema does
/// not define, JSON types as declared, nested refs and array items recursively.
pub fn validate(value: &Value, name: &str, path: &str) {
    let s = schema(name);
    if let Some(provider) = value.get("cloudProvider").and_then(Value::as_str)
        && let Some(mapped) = s.mapping.get(provider)
        && mapped != name
    {
        return validate(value, mapped, path);
    }
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{path}: expected an object for {name}, got {value}"));
    for r in &s.required {
        assert!(obj.contains_key(r), "{path}: {name} requires {r}: {value}");
    }
    if s.props.is_empty() {
        return;
    }
    for (k, v) in obj {
        let p = s
            .props
            .get(k)
            .unwrap_or_else(|| panic!("{path}: {name} has no field {k}: {value}"));
        let here = format!("{path}.{k}");
        if let Some(ty) = &p.ty {
            let ok = match ty.as_str() {
                "string" => v.is_string(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "array" => v.is_array(),
                "object" => v.is_object(),
                _ => true,
            };
            assert!(ok, "{here}: expected {ty}, got {v}");
        }
        if let Some(r) = &p.reference {
            validate(v, r, &here);
        }
        if let (Some(r), Some(items)) = (&p.items_ref, v.as_array()) {
            for (i, item) in items.iter().enumerate() {
                validate(item, r, &format!("{here}[{i}]"));
            }
        }
    }
}
