//! What a change to the manifests does: the targets it adds, changes or removes, against the
//! base branch's manifests (`plan --compare`). A pull request's reviewer reads these first;
//! the rest of the plan is the state the change leaves alone. Targets are matched by id.

use std::collections::HashMap;

use crate::manifest::Target;

/// How one target differs from the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added,
    /// What changed, each as `field: before → after`.
    Changed(Vec<String>),
}

/// A target the base had and this change removes: removing it undoes nothing on Bamboo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub id: String,
    pub plan: String,
    pub branch: Option<String>,
    pub stage: String,
}

#[derive(Debug, Default)]
pub struct Comparison {
    /// By target id: only the targets that are new or differ.
    pub changes: HashMap<String, Change>,
    /// In the base's order.
    pub removed: Vec<Removed>,
}

impl Comparison {
    /// The change to a target, if this change touches it.
    pub fn of(&self, id: &str) -> Option<&Change> {
        self.changes.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.removed.is_empty()
    }
}

/// Compares the targets the base's manifests hold with those of this change.
pub fn compare(base: &[Target], now: &[Target]) -> Comparison {
    let before: HashMap<&str, &Target> = base.iter().map(|t| (t.id.as_str(), t)).collect();
    let kept: std::collections::HashSet<&str> = now.iter().map(|t| t.id.as_str()).collect();
    let mut comparison = Comparison::default();
    for target in now {
        let change = match before.get(target.id.as_str()) {
            None => Some(Change::Added),
            Some(old) => {
                let differences = differences(old, target);
                (!differences.is_empty()).then_some(Change::Changed(differences))
            }
        };
        if let Some(change) = change {
            comparison.changes.insert(target.id.clone(), change);
        }
    }
    comparison.removed = base
        .iter()
        .filter(|t| !kept.contains(t.id.as_str()))
        .map(|t| Removed {
            id: t.id.clone(),
            plan: t.plan.clone(),
            branch: t.branch.clone(),
            stage: t.stage.clone(),
        })
        .collect();
    comparison
}

/// Every field of a target that differs, in the manifest's words.
fn differences(old: &Target, new: &Target) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, before: String, after: String| {
        if before != after {
            out.push(format!("{name}: {before} → {after}"));
        }
    };
    let none = || "none".to_string();
    field("plan", old.plan.clone(), new.plan.clone());
    field(
        "branch",
        old.branch.clone().unwrap_or_else(none),
        new.branch.clone().unwrap_or_else(none),
    );
    field("build", old.build.to_string(), new.build.to_string());
    field("stage", old.stage.clone(), new.stage.clone());
    field("after", list(&old.after), list(&new.after));
    field(
        "executeAllStages",
        old.execute_all_stages.to_string(),
        new.execute_all_stages.to_string(),
    );
    field(
        "require.labels",
        list(&old.require.labels),
        list(&new.require.labels),
    );
    field(
        "require.withoutLabels",
        list(&old.require.without_labels),
        list(&new.require.without_labels),
    );
    let window = |t: &Target| {
        t.require
            .window
            .as_ref()
            .map_or_else(none, |w| w.name.clone())
    };
    field("require.window", window(old), window(new));
    field(
        "record.label",
        old.record_label.clone().unwrap_or_else(none),
        new.record_label.clone().unwrap_or_else(none),
    );
    field(
        "allowDowngrade",
        old.allow_downgrade.to_string(),
        new.allow_downgrade.to_string(),
    );
    // The same window by name, with other hours or another zone.
    if let (Some(before), Some(after)) = (&old.require.window, &new.require.window)
        && before.name == after.name
        && before != after
    {
        out.push(format!("window {}: its hours or zone", after.name));
    }
    out
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn targets(yaml: &str) -> Vec<Target> {
        let text = format!(
            "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: shop }}\nspec:\n  defaults: {{ plan: SHOP-APP }}\n  targets:\n{yaml}"
        );
        crate::manifest::load_text(Path::new("shop.yaml"), text.into_bytes())
            .unwrap()
            .targets
    }

    #[test]
    fn a_change_is_what_it_adds_changes_and_removes_and_nothing_else() {
        let base = targets(
            "    - { id: same, build: 1, stage: Deploy Staging }\n    - { id: moved, build: 2, stage: Deploy Staging }\n    - { id: gone, build: 5, stage: Deploy Prod }\n    - { id: gated, build: 3, stage: Deploy Prod }\n",
        );
        let now = targets(
            "    - { id: same, build: 1, stage: Deploy Staging }\n    - { id: moved, build: 2, stage: Deploy Prod, after: [same] }\n    - { id: new, build: 4, stage: Deploy Staging }\n    - { id: gated, build: 3, stage: Deploy Prod, require: { labels: [qa-ok] } }\n",
        );
        let comparison = compare(&base, &now);
        assert_eq!(comparison.of("same"), None);
        assert_eq!(comparison.of("new"), Some(&Change::Added));
        assert_eq!(
            comparison.of("moved"),
            Some(&Change::Changed(vec![
                "stage: Deploy Staging → Deploy Prod".into(),
                "after: none → same".into()
            ]))
        );
        assert_eq!(
            comparison.of("gated"),
            Some(&Change::Changed(vec![
                "require.labels: none → qa-ok".into()
            ]))
        );
        assert_eq!(
            comparison.removed,
            [Removed {
                id: "gone".into(),
                plan: "SHOP-APP".into(),
                branch: None,
                stage: "Deploy Prod".into()
            }]
        );
        assert!(compare(&now, &now).is_empty());
    }
}
