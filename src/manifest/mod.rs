//! The desired state: manifest files read, checked and resolved into targets.
//!
//! `types` is the format, `load` reads files, `validate` checks what types cannot, and
//! `diagnostic` says what is wrong and where. Everything is checked before anything else runs:
//! one invalid manifest anywhere means no target at all.

mod diagnostic;
mod load;
mod shape;
pub mod types;
mod validate;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use diagnostic::{JsonDiagnostic, ManifestError, Place, SourceFile};
pub use load::{Exclude, MAX_FILE_BYTES};
pub use types::BuildSelector;

/// One promotion, resolved: defaults applied, locations kept for later diagnostics.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub plan: String,
    pub branch: Option<String>,
    pub build: BuildSelector,
    pub stage: String,
    pub after: Vec<String>,
    pub execute_all_stages: bool,
    pub require: Gates,
    /// A label to put on the build once promoted (`record.label`).
    pub record_label: Option<String>,
    /// `allowDowngrade`: a pinned build may be promoted over a newer one.
    pub allow_downgrade: bool,
    /// `metadata.name` of the document the target is in: names its manifest set.
    pub set: String,
    pub places: TargetPlaces,
}

/// What a build must carry (and must not) before it is promoted. Checked on the labels read
/// with the build, so a gate costs no request: when planning, and again under the lease.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Gates {
    pub labels: Vec<String>,
    pub without_labels: Vec<String>,
    /// The window the target may be promoted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<crate::windows::Window>,
}

/// A window, checked at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCheck {
    pub name: String,
    pub open: bool,
    /// When it next opens, in its zone and in UTC.
    pub opens: Option<String>,
    /// `--override-window`: a closed window does not block, and says so.
    pub overridden: bool,
}

impl WindowCheck {
    /// Whether the window lets a promotion through: open, or closed and overridden.
    pub fn lets_through(&self) -> bool {
        self.open || self.overridden
    }
}

/// One gate, checked on one build.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct GateCheck {
    /// `label` (the build must carry it) or `withoutLabel` (it must not).
    pub gate: String,
    pub label: String,
    pub passed: bool,
    /// A closed window that `--override-window` let through.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overridden: bool,
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.without_labels.is_empty() && self.window.is_none()
    }

    /// The window gate at `now` (the server's time, somewhere in `now.0..=now.1`): `None`
    /// without a window; otherwise whether it is open for the whole span, when it next opens
    /// if not, and whether `--override-window` lets it through closed.
    pub fn window_at(
        &self,
        (now, latest): (jiff::Timestamp, jiff::Timestamp),
        override_windows: bool,
    ) -> Option<WindowCheck> {
        let window = self.window.as_ref()?;
        let open = window.is_open_throughout(now, latest).unwrap_or(false);
        let opens = (!open)
            .then(|| window.next_open(now).ok().flatten())
            .flatten()
            .map(|at| window.describe(at));
        Some(WindowCheck {
            name: window.name.clone(),
            open,
            opens,
            overridden: !open && override_windows,
        })
    }

    /// Every gate, checked on a build's labels, in the manifest's order.
    pub fn check(&self, labels: &[String]) -> Vec<GateCheck> {
        let has = |label: &String| labels.iter().any(|l| crate::label::same(l, label));
        let required = self.labels.iter().map(|l| GateCheck {
            gate: "label".into(),
            label: l.clone(),
            passed: has(l),
            overridden: false,
        });
        let forbidden = self.without_labels.iter().map(|l| GateCheck {
            gate: "withoutLabel".into(),
            label: l.clone(),
            passed: !has(l),
            overridden: false,
        });
        required.chain(forbidden).collect()
    }
}

#[derive(Debug, Clone)]
pub struct TargetPlaces {
    pub id: Place,
    pub plan: Place,
    pub branch: Option<Place>,
    pub build: Option<Place>,
    pub stage: Place,
    pub after: Vec<Place>,
}

/// Everything the manifests ask for.
#[derive(Debug, Clone)]
pub struct Desired {
    pub targets: Vec<Target>,
    /// SHA-256 over the files' paths and contents: a saved plan records it.
    pub digest: String,
    pub files: Vec<Arc<SourceFile>>,
    /// YAML files found in folders that do not claim to be manifests, left unread.
    pub skipped: Vec<PathBuf>,
}

impl Desired {
    /// Only the targets named in `ids` and, transitively, the targets they are `after` (like
    /// Terraform's `-target`, which brings a resource's dependencies along): a selected
    /// target's prerequisites are planned and promoted with it. No ids: every target.
    pub fn select(mut self, ids: &[String]) -> Result<Desired, String> {
        if ids.is_empty() {
            return Ok(self);
        }
        let after: HashMap<&str, &[String]> = self
            .targets
            .iter()
            .map(|t| (t.id.as_str(), t.after.as_slice()))
            .collect();
        if let Some(unknown) = ids.iter().find(|id| !after.contains_key(id.as_str())) {
            let mut known: Vec<&str> = after.keys().copied().collect();
            known.sort_unstable();
            return Err(format!(
                "--target {unknown}: no target has that id ({})",
                crate::suggest::help(unknown, "target id", &known)
            ));
        }
        let mut wanted: HashSet<String> = HashSet::new();
        let mut next: Vec<&str> = ids.iter().map(String::as_str).collect();
        while let Some(id) = next.pop() {
            if wanted.insert(id.to_string()) {
                next.extend(after[id].iter().map(String::as_str));
            }
        }
        self.targets.retain(|t| wanted.contains(&t.id));
        Ok(self)
    }
}

/// Loads every manifest below `paths`; all errors of all files, or the desired state.
pub fn load(paths: &[PathBuf]) -> Result<Desired, Vec<ManifestError>> {
    load_excluding(paths, &Exclude::default())
}

/// `load`, leaving out of folder walks what `exclude` names.
pub fn load_excluding(paths: &[PathBuf], exclude: &Exclude) -> Result<Desired, Vec<ManifestError>> {
    let (files, errors) = load::manifest_files(paths, exclude);
    let mut loaded = Vec::new();
    let mut skipped = Vec::new();
    for file in load_all(&files) {
        match file {
            Ok(load::Loaded::Foreign(path)) => {
                tracing::debug!(
                    "skipped {}: a YAML file that does not say `apiVersion: bamboo-promote/…` or `kind: Promotion`",
                    path.display()
                );
                skipped.push(path);
            }
            Ok(load::Loaded::Manifests(file)) => loaded.push(Ok(file)),
            Err(errors) => loaded.push(Err(errors)),
        }
    }
    let mut desired = resolve(loaded, errors);
    match &mut desired {
        Ok(desired) if desired.files.is_empty() => {
            return Err(vec![none_found(paths, skipped.len())]);
        }
        Ok(desired) => desired.skipped = skipped,
        Err(_) => {}
    }
    desired
}

/// The error for a walk that found no manifest, saying how many other YAML files it left.
fn none_found(paths: &[PathBuf], skipped: usize) -> ManifestError {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let path = paths.first().cloned().unwrap_or_default();
    let mut message = format!("no manifest found in {}", shown.join(", "));
    if skipped > 0 {
        message.push_str(&format!(
            " ({} skipped: none says `apiVersion: bamboo-promote/v1`)",
            crate::render::human::counted(skipped, "YAML file")
        ));
    } else {
        message.push_str(" (no *.yaml or *.yml file)");
    }
    ManifestError::file("manifest::none", &path, message)
}

/// Reads the files on every core, results in file order: parsing a large repository's YAML
/// is most of what `plan` does before its first request.
fn load_all(files: &[load::Candidate]) -> Vec<Result<load::Loaded, Vec<ManifestError>>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_worker = files.len().div_ceil(workers).max(1);
    if per_worker == files.len() {
        return files.iter().map(load::load_candidate).collect();
    }
    std::thread::scope(|scope| {
        let parsers: Vec<_> = files
            .chunks(per_worker)
            .map(|part| scope.spawn(|| part.iter().map(load::load_candidate).collect()))
            .collect();
        parsers
            .into_iter()
            .flat_map(|parser| -> Vec<_> { parser.join().expect("a manifest parser panicked") })
            .collect()
    })
}

/// Checks one in-memory file as if it were the only manifest (tests and the fuzz target).
pub fn load_text(path: &Path, bytes: Vec<u8>) -> Result<Desired, Vec<ManifestError>> {
    resolve(vec![load::load_bytes(path, bytes)], Vec::new())
}

fn resolve(
    loaded: Vec<Result<load::LoadedFile, Vec<ManifestError>>>,
    mut errors: Vec<ManifestError>,
) -> Result<Desired, Vec<ManifestError>> {
    let mut targets = Vec::new();
    let mut sources = Vec::new();
    for file in loaded {
        match file {
            Ok(loaded) => {
                for doc in loaded.documents {
                    targets.extend(validate::document(&loaded.file, doc, &mut errors));
                }
                sources.push(loaded.file);
            }
            Err(file_errors) => errors.extend(file_errors),
        }
    }
    validate::across(&targets, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Desired {
        targets,
        digest: digest(&sources),
        files: sources,
        skipped: Vec::new(),
    })
}

fn digest(files: &[Arc<SourceFile>]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.path.display().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(file.text.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JSON Schema of the v1 format, as committed in `schemas/promotion.v1.schema.json`.
pub fn schema() -> String {
    crate::render::schema_text::<types::Document>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_brings_what_its_targets_are_after_transitively() {
        let text = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: chain }
spec:
  defaults: { plan: A-B }
  targets:
    - { id: one, build: 1, stage: S }
    - { id: two, build: 2, stage: S, after: [one] }
    - { id: three, build: 3, stage: S, after: [two] }
    - { id: other, build: 4, stage: S }
";
        let desired = || load_text(Path::new("chain.yaml"), text.as_bytes().to_vec()).unwrap();
        let ids = |d: Desired| -> Vec<String> { d.targets.into_iter().map(|t| t.id).collect() };
        assert_eq!(
            ids(desired().select(&["three".into()]).unwrap()),
            ["one", "two", "three"]
        );
        assert_eq!(ids(desired().select(&[]).unwrap()).len(), 4);
        let error = desired().select(&["thre".into()]).unwrap_err();
        assert!(error.contains("did you mean `three`?"), "{error}");
    }
}
