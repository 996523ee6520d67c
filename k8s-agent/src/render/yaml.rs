//! JSON values as block-style YAML, enough for Kubernetes objects: `kubectl apply -f -` and
//! helm-style tooling read a stream of YAML documents, but take a stream that starts with
//! JSON for a JSON stream and stop at the first `---`.

use serde_json::Value;

/// `value` as a YAML document (no leading `---`), ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    out.extend(std::iter::repeat_n(' ', level));
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a sequence item follows its "- " on the same line.
        if i > 0 || !out.ends_with("- ") {
            indent(out, level);
        }
        out.push_str(&string(key));
        out.push(':');
        write_nested(out, value, level);
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, level + 2),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, level + 2);
            }
            scalar => {
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn write_nested(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, level + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, level);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Plain when YAML reads it back as the same string; otherwise double-quoted, whose escapes
/// are a superset of JSON's.
fn string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_nest_as_blocks_and_ambiguous_strings_are_quoted() {
        let value = json!({
            "apiVersion": "v1",
            "metadata": {"name": "ss-1", "labels": {"a/b": "yes", "n": "5900"}},
            "spec": {
                "containers": [{"name": "desktop", "ports": [{"containerPort": 5900}], "args": ["-x", ""]}],
                "empty": {}, "none": [], "flag": true
            }
        });
        assert_eq!(
            to_yaml(&value),
            r#"apiVersion: v1
metadata:
  labels:
    a/b: "yes"
    "n": "5900"
  name: ss-1
spec:
  containers:
  - args:
    - "-x"
    - ""
    name: desktop
    ports:
    - containerPort: 5900
  empty: {}
  flag: true
  none: []
"#
        );
    }
}
