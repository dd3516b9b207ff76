//! What the client reads: the server's info, plans, a plan's branches, builds with all their
//! labels, a plan's history, project listings and the newest build with a label. Each read
//! is retried (see `client`), and each answer is checked to be what was asked for where the
//! server could answer for another thing.

use super::client::{BambooClient, BambooError, Reading, encode_segment, results_of};
use super::types::{BranchInfo, BranchList, BuildResult, Label, LabelList, PlanInfo, ResultList};

/// Labels asked for per page of `result/{build}/label`, and the most a build may carry: a
/// build needs a handful, and past this a list that keeps growing is a broken answer.
const LABEL_PAGE: usize = 100;
const LABELS_AT_MOST: usize = 2_000;
/// Branches asked for per page of `plan/{plan}/branch`.
const BRANCH_PAGE: usize = 100;
/// The most branches read of one plan; past it, the listing is a broken answer.
const BRANCHES_AT_MOST: usize = 10_000;
/// Times a label list that changed while read is read again from its start.
const LABEL_RESTARTS: u32 = 3;

/// What a listing expands: each build's stages and labels.
const STAGES_AND_LABELS: &str = "results.result.stages.stage,results.result.labels";

impl BambooClient {
    /// `GET info`: Bamboo's version, when `server` is Bamboo's address. Used to tell a wrong
    /// address from missing plans, once something failed.
    pub async fn info(&self) -> Result<String, BambooError> {
        let info: Option<Info> = self.get("read the server's info", "info", &[]).await?;
        info.map(|i| i.version).ok_or_else(|| BambooError::Status {
            what: "read the server's info".into(),
            status: 404,
            message: "no such resource".into(),
        })
    }

    /// `GET plan/{key}?expand=stages.stage`; `None` when there is no such plan.
    pub async fn plan(&self, key: &str) -> Result<Option<PlanInfo>, BambooError> {
        self.get(
            &format!("read plan {key}"),
            &format!("plan/{}", encode_segment(key)),
            &[("expand", "stages.stage")],
        )
        .await
    }

    /// `GET plan/{key}/branch`, page after page: every branch of the plan. A branch's name is
    /// never put in a path: Tomcat, which Bamboo runs on, refuses an encoded `/` (`%2F`) with
    /// 400, and proxies before it with 404, so branch names are matched against this list.
    /// The list is whole only once a page comes back empty: a `size` is not trusted, and a
    /// page shorter than asked may be a server's cap (10, 25) rather than the end — a branch
    /// missed on a later page could leave another answering to its name alone. A plan with no
    /// such resource (404) has none.
    pub async fn branches(&self, plan: &str) -> Result<Vec<BranchInfo>, BambooError> {
        let what = format!("list the branches of {plan}");
        let path = format!("plan/{}/branch", encode_segment(plan));
        let page_size = BRANCH_PAGE.to_string();
        let mut branches: Vec<BranchInfo> = Vec::new();
        loop {
            let start = branches.len().to_string();
            let query = [
                ("expand", "branches.branch.vcsBranch"),
                ("start-index", start.as_str()),
                ("max-results", page_size.as_str()),
                ("max-result", page_size.as_str()),
            ];
            let Some(page) = self.get::<BranchList>(&what, &path, &query).await? else {
                return Ok(branches);
            };
            let page = page.branches.items;
            // A page that begins where the list did: the server ignores `start-index`.
            if !branches.is_empty()
                && page.first().map(|b| &b.key) == branches.first().map(|b| &b.key)
            {
                return Err(BambooError::Decode {
                    what,
                    detail: "the first branch listed again on a later page: the server does not page branches".into(),
                });
            }
            if page.is_empty() {
                return Ok(branches);
            }
            branches.extend(page);
            if branches.len() >= BRANCHES_AT_MOST {
                return Err(BambooError::Decode {
                    what,
                    detail: format!("more than {BRANCHES_AT_MOST} branches listed"),
                });
            }
        }
    }

    /// `GET result/{plan}-{number}` (or `-latest`) with its stages.
    pub async fn build(
        &self,
        plan: &str,
        number: Option<u32>,
    ) -> Result<Option<BuildResult>, BambooError> {
        self.build_in(plan, number, Reading::Retried).await
    }

    /// `build`, sent as `reading` says: retried in a slot of its own, or once in a slot the
    /// caller holds (a write's last read, see `WriteTurn`).
    pub(super) async fn build_in(
        &self,
        plan: &str,
        number: Option<u32>,
        reading: Reading,
    ) -> Result<Option<BuildResult>, BambooError> {
        let which = number.map_or("latest".to_string(), |n| n.to_string());
        let key = format!("{plan}-{which}");
        let query = [
            ("expand", "stages.stage,labels"),
            ("includeAllStates", "true"),
        ];
        let what = format!("read build {key}");
        let build: Option<BuildResult> = self
            .get_in(&what, &results_of(&key), &query, reading)
            .await?;
        match build {
            Some(build) if !is_build_of(&build, plan, number) => Err(BambooError::Mismatch {
                what,
                answered: format!("build {}", build.key),
            }),
            Some(build) => self.with_all_labels_in(build, reading).await.map(Some),
            None => Ok(None),
        }
    }

    /// The build with every label, read page by page (`all_labels`) when its answer listed
    /// only a page of them: gates and locks are decided on the whole list.
    pub async fn with_all_labels(&self, build: BuildResult) -> Result<BuildResult, BambooError> {
        self.with_all_labels_in(build, Reading::Retried).await
    }

    pub(super) async fn with_all_labels_in(
        &self,
        mut build: BuildResult,
        reading: Reading,
    ) -> Result<BuildResult, BambooError> {
        if build.labels.size > build.labels.items.len() {
            let listed = std::mem::take(&mut build.labels.items);
            let size = build.labels.size;
            build.labels.items = self
                .confirmed_labels(&build.key, listed, size, reading)
                .await?;
            build.labels_paged = true;
        }
        Ok(build)
    }

    /// Every label of a build: the pages after `listed` (`rest_of_labels`), then the whole
    /// list again from its start, until two reads agree. Pages are not one snapshot: a label
    /// taken off before a page's end, while another is put on, moves the next label back into
    /// the part already read, and neither read shows it — a watcher's mark or a lock, unseen.
    async fn confirmed_labels(
        &self,
        build_key: &str,
        listed: Vec<Label>,
        size: usize,
        reading: Reading,
    ) -> Result<Vec<Label>, BambooError> {
        let mut last = self
            .rest_of_labels(build_key, listed, size, reading)
            .await?;
        for _ in 0..LABEL_RESTARTS {
            let again = self
                .rest_of_labels(build_key, Vec::new(), last.len(), reading)
                .await?;
            if again == last {
                return Ok(again);
            }
            last = again;
        }
        Err(BambooError::Changing {
            what: format!("read the labels of {build_key}"),
        })
    }

    /// `GET result/{build}/label`, page after page from where `listed` (the first of `size`
    /// labels, as the build's own answer gave them) stops: every label of the build. When the
    /// count changes or a label shows twice (labels moved), the list is read again from its
    /// start. A page that begins where the list did (a server that ignores `start-index`) or
    /// comes back empty early is an error, never a shorter list: another apply's lock label
    /// left out would go unseen. Pages are not one snapshot: `confirmed_labels` reads until
    /// two lists agree.
    async fn rest_of_labels(
        &self,
        build_key: &str,
        mut labels: Vec<Label>,
        size: usize,
        reading: Reading,
    ) -> Result<Vec<Label>, BambooError> {
        let what = format!("read the labels of {build_key}");
        let broken = |detail: String| BambooError::Decode {
            what: what.clone(),
            detail,
        };
        let too_many = |size: usize| {
            (size > LABELS_AT_MOST).then(|| {
                broken(format!(
                    "{size} labels, more than the {LABELS_AT_MOST} a build is read with"
                ))
            })
        };
        if let Some(error) = too_many(size) {
            return Err(error);
        }
        let path = format!("{}/label", results_of(build_key));
        let page_size = LABEL_PAGE.to_string();
        let mut restarts = 0;
        let mut size = size;
        while labels.len() < size {
            let start = labels.len().to_string();
            let query = [
                ("start-index", start.as_str()),
                ("max-results", page_size.as_str()),
                ("max-result", page_size.as_str()),
            ];
            let page: Option<LabelList> = self.get_in(&what, &path, &query, reading).await?;
            let page = page
                .ok_or_else(|| broken("the build has no label list any more".into()))?
                .labels;
            // A page that begins where the list did: the server ignores `start-index`.
            let from_the_start = !labels.is_empty()
                && page.items.first().map(|l| &l.name) == labels.first().map(|l| &l.name);
            if from_the_start {
                return Err(broken(format!(
                    "label {:?} listed again on a later page: the server does not page labels",
                    labels[0].name
                )));
            }
            // Labels came, went or moved between the reads (a page repeats one): read the
            // list again from its start.
            let moved = page
                .items
                .iter()
                .any(|label| labels.iter().any(|l| l.name == label.name));
            if page.size != size || moved {
                restarts += 1;
                if restarts > LABEL_RESTARTS {
                    return Err(BambooError::Changing { what });
                }
                if let Some(error) = too_many(page.size) {
                    return Err(error);
                }
                (labels, size) = (Vec::new(), page.size);
                continue;
            }
            if page.items.is_empty() {
                return Err(broken(format!(
                    "{} of {size} labels listed, then an empty page",
                    labels.len()
                )));
            }
            labels.extend(page.items);
        }
        Ok(labels)
    }

    /// `GET result/{plan}`: up to `max` builds, newest first from the `start`-th, of every
    /// state, with stages, and the history's `size` (a server may show fewer than `max`).
    pub async fn history(
        &self,
        plan: &str,
        start: usize,
        max: usize,
    ) -> Result<(Vec<BuildResult>, usize), BambooError> {
        self.history_in(plan, start, max, Reading::Retried).await
    }

    pub(super) async fn history_in(
        &self,
        plan: &str,
        start: usize,
        max: usize,
        reading: Reading,
    ) -> Result<(Vec<BuildResult>, usize), BambooError> {
        let what = format!("read history of {plan}");
        let list = self
            .result_list(
                &what,
                &results_of(plan),
                &[],
                (start, max),
                STAGES_AND_LABELS,
                reading,
            )
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// `GET result/{plan}`'s newest `max` builds with their comments too: the records that
    /// say which apply promoted each one.
    pub async fn history_with_comments(
        &self,
        plan: &str,
        max: usize,
    ) -> Result<(Vec<BuildResult>, usize), BambooError> {
        let what = format!("read history of {plan}");
        let expand = "results.result.stages.stage,results.result.labels,results.result.comments";
        let list = self
            .result_list(
                &what,
                &results_of(plan),
                &[],
                (0, max),
                expand,
                Reading::Retried,
            )
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// One page of `GET result/{project}`, or of `GET result` for the whole server: the latest
    /// build of each default-branch plan, with stages, and the listing's total `size`.
    pub async fn latest_builds(
        &self,
        project: Option<&str>,
        start: usize,
        max: usize,
    ) -> Result<(Vec<BuildResult>, usize), BambooError> {
        let (what, path) = match project {
            Some(project) => (
                format!("list latest builds of project {project}"),
                results_of(project),
            ),
            None => (
                "list latest builds of the server".to_string(),
                "result".to_string(),
            ),
        };
        let list = self
            .result_list(
                &what,
                &path,
                &[],
                (start, max),
                STAGES_AND_LABELS,
                Reading::Retried,
            )
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// `GET result/{plan}?label={label}`: the newest build of a plan (or branch plan) that
    /// carries the label, however far back in its history; `None` when no build does.
    pub async fn labelled(
        &self,
        plan: &str,
        label: &str,
    ) -> Result<Option<BuildResult>, BambooError> {
        self.labelled_in(plan, label, Reading::Retried).await
    }

    pub(super) async fn labelled_in(
        &self,
        plan: &str,
        label: &str,
        reading: Reading,
    ) -> Result<Option<BuildResult>, BambooError> {
        let what = format!("read the build of {plan} labelled {label:?}");
        let list = self
            .result_list(
                &what,
                &results_of(plan),
                &[("label", label)],
                (0, 1),
                STAGES_AND_LABELS,
                reading,
            )
            .await?;
        Ok(list.and_then(|(builds, _)| builds.into_iter().next()))
    }

    /// One page of the `result` listing at `path`, with stages and labels, builds of every
    /// state, and the collection's `size`; `None` for 404. `filter` narrows the builds
    /// (`label`). Both spellings of the page size go out: servers differ in which they honour.
    async fn result_list(
        &self,
        what: &str,
        path: &str,
        filter: &[(&str, &str)],
        (start, max): (usize, usize),
        expand: &str,
        reading: Reading,
    ) -> Result<Option<(Vec<BuildResult>, usize)>, BambooError> {
        let (start, max) = (start.to_string(), max.to_string());
        let mut query = vec![
            ("expand", expand),
            ("includeAllStates", "true"),
            ("start-index", start.as_str()),
            ("max-results", max.as_str()),
            ("max-result", max.as_str()),
        ];
        query.extend_from_slice(filter);
        let list: Option<ResultList> = self.get_in(what, path, &query, reading).await?;
        Ok(list.map(|l| (l.results.items, l.results.size)))
    }
}

/// The part of `GET info` that says this is Bamboo.
#[derive(serde::Deserialize)]
struct Info {
    version: String,
}

/// Whether a build the server returned is the one asked for: `{plan}-{number}`, or any build
/// of the plan for `latest`.
fn is_build_of(build: &BuildResult, plan: &str, number: Option<u32>) -> bool {
    let Some((of, n)) = build.key.rsplit_once('-') else {
        return false;
    };
    of == plan && number.is_none_or(|wanted| n == wanted.to_string() && build.number == wanted)
}
