//! The v1 manifest format as Rust types: what serde reads and schemars describes.
//!
//! Fields that a later error must point at are `Spanned`, so a message such as "no stage
//! `Deploy Prd` in plan SHOP-APP" lands on the line that says it. No `flatten` and no untagged
//! enums: both lose locations in serde-saphyr.

use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub const API_VERSION: &str = "bamboo-promote/v1";
pub const KIND: &str = "Promotion";

/// One YAML document: a named set of promotion targets.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "bamboo-promote Promotion (v1)")]
pub struct Document {
    /// Always `bamboo-promote/v1`.
    #[schemars(with = "String", extend("const" = "bamboo-promote/v1"))]
    pub api_version: Spanned<String>,
    /// Always `Promotion`.
    #[schemars(with = "String", extend("const" = "Promotion"))]
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// A name for this set of promotions, shown in plans and audit logs.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Free-form labels, for people and tooling.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// Values every target of this document inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// Named promotion windows, for this document's targets' `require.window`.
    #[serde(default)]
    pub windows: BTreeMap<String, WindowSpec>,
    /// The promotions: which build must have reached which manual stage.
    pub targets: Vec<TargetSpec>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    /// Plan key, such as `SHOP-APP`.
    #[serde(default)]
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[A-Z][A-Z0-9]*-[A-Z][A-Z0-9]*$")
    )]
    pub plan: Option<Spanned<String>>,
    /// Plan branch name, as Bamboo shows it (`release/2.4`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub branch: Option<Spanned<String>>,
    /// Which build of the plan (or branch): `latest` unless set.
    #[serde(default)]
    #[schemars(with = "Option<BuildSelector>")]
    pub build: Option<Spanned<BuildSelector>>,
    /// Run every stage after the target too (Bamboo's `executeAllStages`). Default false.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub execute_all_stages: Option<Spanned<bool>>,
}

/// One promotion.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    /// Unique across everything loaded; other targets name it in `after`.
    #[schemars(with = "String", regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    pub id: Spanned<String>,
    /// Plan key, such as `SHOP-APP`; falls back to `spec.defaults.plan`.
    #[serde(default)]
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[A-Z][A-Z0-9]*-[A-Z][A-Z0-9]*$")
    )]
    pub plan: Option<Spanned<String>>,
    /// Plan branch name; the plan's default branch when absent.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub branch: Option<Spanned<String>>,
    /// Which build: `latest`, a build number, `{revision: <sha>}` or `{label: <label>}`.
    #[serde(default)]
    #[schemars(with = "Option<BuildSelector>")]
    pub build: Option<Spanned<BuildSelector>>,
    /// The manual stage this build must have run (exact name, as in Bamboo).
    #[schemars(with = "String")]
    pub stage: Spanned<String>,
    /// Ids of targets that must be in sync first.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub after: Vec<Spanned<String>>,
    /// Run every stage after the target too. Default false.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub execute_all_stages: Option<Spanned<bool>>,
    /// What the build must carry before it is promoted; a target whose gate is not met is
    /// blocked, with the reason.
    #[serde(default)]
    pub require: Option<RequireSpec>,
    /// What to leave on the build once it is promoted, besides a comment: a label.
    #[serde(default)]
    pub record: Option<RecordSpec>,
    /// Promote a pinned build even when a newer build of the plan already reached the stage
    /// (a rollback). Default false: that is blocked as a downgrade.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub allow_downgrade: Option<Spanned<bool>>,
}

/// A record left on a promoted build.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSpec {
    /// A label to put on the build once the promotion is confirmed (`promoted-prod`).
    #[schemars(with = "String")]
    pub label: Spanned<String>,
}

/// When targets may be promoted: `allow` rules (any; always when none), `deny` rules (none may
/// match; deny wins), read in `timeZone`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowSpec {
    /// An IANA time zone name, such as `Europe/Berlin`.
    #[schemars(with = "String")]
    pub time_zone: Spanned<String>,
    #[serde(default)]
    pub allow: Vec<RuleSpec>,
    #[serde(default)]
    pub deny: Vec<RuleSpec>,
}

/// A stretch of time: weekdays (`mon` … `sun`; all when none), dates (inclusive, `YYYY-MM-DD`;
/// any when none), and a time of day from `from` up to `to` (`HH:MM`, `24:00` for midnight at
/// the end; all day when none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub days: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub from: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub to: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub from_date: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub to_date: Option<Spanned<String>>,
}

/// Gates on a target's build.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequireSpec {
    /// A window of `spec.windows`: outside it the target is blocked (`apply --override-window
    /// --reason` lets it through).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub window: Option<Spanned<String>>,
    /// Labels the build must carry, every one (`qa-approved`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub labels: Vec<Spanned<String>>,
    /// Labels the build must not carry, any of them (`do-not-promote`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub without_labels: Vec<Spanned<String>>,
}

/// Which build of a plan a target means.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuildSelector {
    /// The newest build.
    Latest,
    /// Build number N.
    Number(u32),
    /// The newest build of this VCS revision.
    Revision(String),
    /// The newest build carrying this label.
    Label(String),
    /// The newest build that has reached the target stage or can reach it (every stage
    /// before it passed, gates met); the planner chooses it from the plan's history.
    NewestEligible,
}

impl BuildSelector {
    /// Whether the selector names a build that newer builds do not replace — a number, a
    /// label, a revision — so that a newer build may already have gone further: a downgrade.
    pub fn pins(&self) -> bool {
        matches!(
            self,
            BuildSelector::Number(_) | BuildSelector::Label(_) | BuildSelector::Revision(_)
        )
    }
}

impl fmt::Display for BuildSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildSelector::Latest => f.write_str("latest"),
            BuildSelector::Number(n) => write!(f, "#{n}"),
            BuildSelector::Revision(r) => write!(f, "revision {r}"),
            BuildSelector::Label(l) => write!(f, "label {l}"),
            BuildSelector::NewestEligible => f.write_str("newest eligible"),
        }
    }
}

/// Written as it is read, so a saved plan reads back.
impl Serialize for BuildSelector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            BuildSelector::Latest => serializer.serialize_str("latest"),
            BuildSelector::Number(n) => serializer.serialize_u32(*n),
            BuildSelector::NewestEligible => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("newest", "eligible")?;
                map.end()
            }
            BuildSelector::Revision(value) | BuildSelector::Label(value) => {
                let key = if matches!(self, BuildSelector::Revision(_)) {
                    "revision"
                } else {
                    "label"
                };
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(key, value)?;
                map.end()
            }
        }
    }
}

/// Hand-written so that `latest`, `42` and `{revision: abc}` can share one field without an
/// untagged enum, which would lose the location of a bad value.
impl<'de> Deserialize<'de> for BuildSelector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SelectorVisitor)
    }
}

struct SelectorVisitor;

const SELECTOR_EXPECTED: &str =
    "`latest`, a build number, `{revision: <sha>}`, `{label: <name>}` or `{newest: eligible}`";

impl<'de> Visitor<'de> for SelectorVisitor {
    type Value = BuildSelector;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SELECTOR_EXPECTED)
    }

    /// Only `latest` is a string; a quoted number is refused as the schema refuses it, so
    /// that `"0"` and `"+1"` cannot slip past the number's range.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<BuildSelector, E> {
        match v {
            "latest" => Ok(BuildSelector::Latest),
            quoted if quoted.trim_start_matches(['+', '-']).parse::<u64>().is_ok() => {
                Err(E::custom(format!(
                    "build number `{quoted}` is quoted: write a number from 1 to {} without quotes",
                    u32::MAX
                )))
            }
            other => Err(E::custom(format!(
                "unknown build selector `{}`: expected {SELECTOR_EXPECTED}",
                crate::manifest::diagnostic::shorten(other)
            ))),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<BuildSelector, E> {
        match u32::try_from(v) {
            Ok(n) if n > 0 => Ok(BuildSelector::Number(n)),
            _ => Err(E::custom(format!(
                "build number {v} is out of range (1 to {})",
                u32::MAX
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<BuildSelector, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "build number {v} is out of range (1 to {})",
                u32::MAX
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BuildSelector, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "empty build selector: expected {SELECTOR_EXPECTED}"
            )));
        };
        let selector = match key.as_str() {
            "revision" => BuildSelector::Revision(map.next_value()?),
            "label" => BuildSelector::Label(map.next_value()?),
            "newest" => match map.next_value::<String>()?.as_str() {
                "eligible" => BuildSelector::NewestEligible,
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown `newest: {other}`: the one kind is `newest: eligible`"
                    )));
                }
            },
            other => {
                return Err(de::Error::unknown_field(
                    other,
                    &["revision", "label", "newest"],
                ));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a build selector has one key, `revision` or `label`; found also `{extra}`"
            )));
        }
        Ok(selector)
    }
}

impl JsonSchema for BuildSelector {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BuildSelector".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Which build: `latest`, a build number, `{revision: <sha>}` or `{label: <name>}`.",
            "oneOf": [
                { "const": "latest" },
                { "type": "integer", "minimum": 1, "maximum": u32::MAX },
                { "type": "object", "properties": { "revision": { "type": "string", "minLength": 1 } }, "required": ["revision"], "additionalProperties": false },
                { "type": "object", "properties": { "label": { "type": "string", "minLength": 1 } }, "required": ["label"], "additionalProperties": false },
                { "type": "object", "properties": { "newest": { "const": "eligible" } }, "required": ["newest"], "additionalProperties": false }
            ]
        })
    }
}
