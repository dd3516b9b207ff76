//! Every misspelt or missing key of a document in one run. serde stops at the first error of a
//! document, so two misspelt fields would take two runs to find. When a file does not read as
//! manifests, it is read again as plain YAML, with the place of every key and value, and
//! walked against the format's JSON Schema (`schemas/promotion.v1.schema.json`, made from the
//! same types): each key the schema does not know, and each key it requires that is missing,
//! is an error at its own place. Only where the schema says one thing — an object with its
//! properties, an array of them, a map of them — is the walk sure; where it offers choices
//! (a build selector) it says nothing, and serde's own error stands.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::diagnostic::{ManifestError, SourceFile};
use super::load::place;

/// A YAML node with the place of each key and value.
enum Node {
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

/// The format's schema, parsed once.
fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(&super::schema()).expect("the schema is JSON"))
}

/// The key errors of every document of a file that read as YAML; empty when the YAML does not
/// read this way or the walk finds nothing (then serde's error stands).
pub fn key_errors(file: &Arc<SourceFile>, options: serde_saphyr::Options) -> Vec<ManifestError> {
    let Ok(documents) =
        serde_saphyr::from_multiple_with_options::<Spanned<Node>>(&file.text, options)
    else {
        return Vec::new();
    };
    let mut walk = Walk {
        file,
        defs: &schema()["$defs"],
        errors: Vec::new(),
    };
    for document in &documents {
        walk.node(document, schema());
    }
    walk.errors.sort_by_key(|e| e.line_column());
    walk.errors
}

/// `schema` with a `$ref` followed, and an optional value's `anyOf [X, null]` taken as X;
/// `None` where the schema offers a choice.
fn resolve<'s>(defs: &'s Value, schema: &'s Value) -> Option<&'s Value> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/$defs/")?;
        return resolve(defs, &defs[name]);
    }
    let choices = schema["anyOf"].as_array().or(schema["oneOf"].as_array());
    if let Some(choices) = choices {
        let mut not_null = choices.iter().filter(|c| c["type"] != "null");
        let only = not_null.next()?;
        return if not_null.next().is_none() {
            resolve(defs, only)
        } else {
            None
        };
    }
    Some(schema)
}

struct Walk<'a> {
    file: &'a Arc<SourceFile>,
    defs: &'a Value,
    errors: Vec<ManifestError>,
}

impl Walk<'_> {
    fn node(&mut self, node: &Spanned<Node>, schema: &Value) {
        let Some(schema) = resolve(self.defs, schema) else {
            return;
        };
        match &node.value {
            Node::Map(entries) if schema["properties"].is_object() => {
                self.object(&node.referenced, entries, schema)
            }
            Node::Map(entries) if schema["additionalProperties"].is_object() => {
                for (_, value) in entries {
                    self.node(value, &schema["additionalProperties"]);
                }
            }
            Node::Seq(items) if schema["items"].is_object() => {
                for item in items {
                    self.node(item, &schema["items"]);
                }
            }
            _ => {}
        }
    }

    fn object(
        &mut self,
        at: &Location,
        entries: &[(Spanned<String>, Spanned<Node>)],
        schema: &Value,
    ) {
        let properties: BTreeMap<&str, &Value> = schema["properties"]
            .as_object()
            .map(|p| p.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        let known: Vec<&str> = properties.keys().copied().collect();
        // The fields a misspelt key was likely meant as: not reported missing as well.
        let mut meant = Vec::new();
        for (key, value) in entries {
            match properties.get(key.value.as_str()) {
                Some(property) => self.node(value, property),
                None if schema["additionalProperties"] == false => {
                    meant.extend(crate::suggest::closest(&key.value, known.iter().copied()));
                    self.errors.push(
                        ManifestError::at(
                            "manifest::syntax",
                            place(self.file, &key.referenced),
                            "here",
                            format!("unknown field `{}`", key.value),
                        )
                        .with_help(
                            match crate::suggest::closest(&key.value, known.iter().copied()) {
                                Some(best) => format!("did you mean `{best}`?"),
                                None => format!("the fields here: {}", known.join(", ")),
                            },
                        ),
                    );
                }
                None => {}
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let Some(required) = required.as_str() else {
                continue;
            };
            if meant.contains(&required) {
                continue;
            }
            if !entries.iter().any(|(key, _)| key.value == required) {
                self.errors.push(ManifestError::at(
                    "manifest::syntax",
                    place(self.file, at),
                    "in this mapping",
                    format!("missing field `{required}`"),
                ));
            }
        }
    }
}
