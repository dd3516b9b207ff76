//! The Git checkout the manifests live in: its commit names a `watch` cycle and a pull
//! request's plan comment, and `watch --pull` fast-forwards it before each cycle (never a merge: the commit a watcher acts on is one the
//! repository's branch had). Git is run as a program, as a person would, so its credentials,
//! hooks and configuration are the user's.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a pull may take before the cycle gives up on it.
const PULL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Checkout {
    root: PathBuf,
}

impl Checkout {
    /// The checkout `path` is in, if it is in one (and `git` runs).
    pub async fn of(path: &Path) -> Option<Checkout> {
        let dir = match path.parent() {
            _ if path.is_dir() => path,
            // A bare file name is in the current folder.
            Some(parent) if parent.as_os_str().is_empty() => Path::new("."),
            Some(parent) => parent,
            None => return None,
        };
        let top = git(dir, &["rev-parse", "--show-toplevel"]).await.ok()?;
        Some(Checkout {
            root: PathBuf::from(top),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `git pull --ff-only`: what the branch's remote has, if it only adds to this checkout.
    pub async fn pull(&self) -> Result<(), String> {
        let pulled = tokio::time::timeout(
            PULL_TIMEOUT,
            git(&self.root, &["pull", "--ff-only", "--quiet"]),
        )
        .await;
        match pulled {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("git pull --ff-only failed: {e}")),
            Err(_) => Err(format!(
                "git pull --ff-only took more than {}s",
                PULL_TIMEOUT.as_secs()
            )),
        }
    }

    /// Files under `paths` that differ from the commit checked out — changed, staged or not
    /// yet added. A watcher that pulls acts on what a commit says, and names it: edits made in
    /// the checkout would be applied under a commit that does not hold them.
    pub async fn uncommitted(&self, paths: &[PathBuf]) -> Result<Vec<String>, String> {
        let mut args = vec![
            "status".to_string(),
            "--porcelain".into(),
            "--untracked-files=all".into(),
            "--".into(),
        ];
        for path in paths {
            let path = std::path::absolute(path).map_err(|e| e.to_string())?;
            args.push(path.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let status = git(&self.root, &args).await?;
        Ok(status
            .lines()
            .map(|line| line.get(3..).unwrap_or(line).to_string())
            .collect())
    }

    /// The files among `files` that are not in the commit checked out as they are on disk:
    /// outside the checkout (a symbolic link out of it), ignored, untracked, or with other
    /// contents (an edit hidden by `skip-worktree`). Each is compared by its blob id with the
    /// commit's tree, so nothing git's status might not show slips through.
    pub async fn not_in_head(&self, files: &[PathBuf]) -> Result<Vec<String>, String> {
        let root = std::fs::canonicalize(&self.root).map_err(|e| e.to_string())?;
        let mut relative = Vec::new();
        let mut outside = Vec::new();
        for file in files {
            let real =
                std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
            match real.strip_prefix(&root) {
                Ok(inside) => relative.push(inside.display().to_string()),
                Err(_) => outside.push(format!("{} (outside the checkout)", file.display())),
            }
        }
        if relative.is_empty() {
            return Ok(outside);
        }
        let mut args = vec!["hash-object", "--"];
        args.extend(relative.iter().map(String::as_str));
        let on_disk = git(&root, &args).await?;
        let mut args = vec!["ls-tree", "-z", "HEAD", "--"];
        args.extend(relative.iter().map(String::as_str));
        let listed = git(&root, &args).await?;
        let in_head: std::collections::HashMap<&str, &str> = listed
            .split('\0')
            .filter_map(|entry| {
                let (meta, path) = entry.split_once('\t')?;
                Some((path, meta.split_whitespace().nth(2)?))
            })
            .collect();
        for (path, blob) in relative.iter().zip(on_disk.lines()) {
            if in_head.get(path.as_str()) != Some(&blob.trim()) {
                outside.push(path.clone());
            }
        }
        Ok(outside)
    }

    /// The commit checked out, abbreviated to 12 characters.
    pub async fn head(&self) -> Option<String> {
        git(&self.root, &["rev-parse", "--short=12", "HEAD"])
            .await
            .ok()
    }
}

/// Runs git in `dir`; its trimmed output, or its error output.
async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        // A pull that asks for a password must fail, not wait for a terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("no output")
            .to_string())
    }
}
