//! XML answers for clients that do not ask for JSON, as Bamboo gives them: scalars as the
//! element's attributes (`<result key=".." state=".." lifeCycleState="..">`), objects and
//! lists as child elements. A client that forgot `Accept: application/json` must see that it
//! got no JSON.

use serde_json::Value;

pub fn render(root: &str, value: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>");
    element(&mut out, root, value);
    out
}

fn element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| element(out, name, item)),
        Value::Object(map) => {
            let (scalars, nested): (Vec<_>, Vec<_>) = map
                .iter()
                .partition(|(_, v)| !matches!(v, Value::Object(_) | Value::Array(_)));
            out.push_str(&format!("<{name}"));
            for (key, value) in scalars {
                let text = match value {
                    Value::String(s) => escape(s),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                out.push_str(&format!(" {key}=\"{text}\""));
            }
            out.push('>');
            nested.into_iter().for_each(|(k, v)| element(out, k, v));
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
