//! The REST endpoints of `/rest/api/latest` that bamboo-promote and common clients use, mapped
//! onto the engine. Paths are split and percent-decoded here, so a branch named
//! `feature/login` arrives as one segment (`feature%2Flogin`).

use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::{Value, json};

use super::engine::{Build, Engine, PlanState, QueueRequest, Refused, not_found_build};
use super::view::{self, ResultView};
use super::world::{Behaviour, ErrorSubCode, LabelCase, UnknownBranch};

/// One request to the REST API, parsed.
pub struct ApiRequest {
    pub method: String,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The sim clock when it reached the server: a held write is applied later.
    pub arrived_ms: u64,
}

impl ApiRequest {
    pub fn new(
        method: &str,
        path: &str,
        raw_query: &str,
        body: Vec<u8>,
        arrived_ms: u64,
    ) -> ApiRequest {
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let query = form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect();
        ApiRequest {
            method: method.to_string(),
            segments,
            query,
            body,
            arrived_ms,
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn params(&self, name: &str) -> impl Iterator<Item = &str> {
        self.query
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        self.param(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn expands(&self, what: &str) -> bool {
        self.params("expand")
            .flat_map(|e| e.split(','))
            .any(|e| e.trim().starts_with(what))
    }
}

pub struct Reply {
    pub status: u16,
    /// The XML root element name, for clients that did not ask for JSON.
    pub root: &'static str,
    /// The answer as JSON text.
    pub body: Option<String>,
}

fn ok(root: &'static str, body: &impl Serialize) -> Reply {
    Reply {
        status: 200,
        root,
        body: Some(to_json(body)),
    }
}

pub fn to_json(body: &impl Serialize) -> String {
    serde_json::to_string(body).expect("the simulator's answers serialize")
}

fn no_content() -> Reply {
    Reply {
        status: 204,
        root: "empty",
        body: None,
    }
}

impl Reply {
    /// A refusal in the error body of the server's version.
    fn refused(r: Refused, behaviour: &Behaviour) -> Reply {
        let body = match behaviour.error_sub_code {
            ErrorSubCode::Present => to_json(&view::error(r.status, &r.message)),
            ErrorSubCode::Absent => to_json(&view::error_without_sub_code(r.status, &r.message)),
        };
        Reply {
            status: r.status,
            root: "status",
            body: Some(body),
        }
    }
}

pub struct Paging {
    pub default_size: usize,
    pub cap: Option<usize>,
    /// Labels listed per result at most.
    pub label_page: Option<usize>,
}

pub struct Context<'a> {
    pub base: &'a str,
    pub now: u64,
    pub paging: &'a Paging,
    pub quirks: ListingQuirks,
}

/// How listings of results fall short of what was asked, as some servers' do (the fault
/// switches of the same names).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListingQuirks {
    pub without_stages: bool,
    pub hide_running: bool,
    pub size_is_page_length: bool,
}

/// Answers a GET. Reads share the engine.
pub fn read(engine: &Engine, req: &ApiRequest, ctx: &Context<'_>) -> Reply {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let result = match segs.as_slice() {
        ["info"] => Ok(info()),
        ["result"] => Ok(latest_listing(engine, req, ctx, None)),
        ["result", key] => result_for_key(engine, req, ctx, key),
        ["result", plan, "branch", name] => {
            branch_key(engine, plan, name).and_then(|key| history(engine.plan(&key)?, req, ctx))
        }
        ["result", plan, "branch", name, number] => branch_key(engine, plan, name)
            .and_then(|key| one_result(engine, req, ctx, &key, number)),
        ["result", key, "label"] => labels(engine, req, ctx, key),
        ["result", key, "comment"] => comments(engine, key),
        // `result/PROJ-PLAN/latest` and `result/PROJ-PLAN/12`, as some clients spell them.
        ["result", plan, number] => one_result(engine, req, ctx, plan, number),
        ["plan", key] => engine
            .plan(key)
            .map(|p| ok("plan", &view::plan(ctx.base, p, req.expands("stages")))),
        ["plan", key, "branch"] => branches(engine, req, ctx, key),
        ["plan", key, "branch", name] => branch_key(engine, key, name)
            .and_then(|k| Ok(ok("branch", &view::branch(ctx.base, engine.plan(&k)?)))),
        ["queue"] => Ok(queue(engine, ctx)),
        _ => Err(no_route()),
    };
    match result {
        Ok(reply) => reply,
        // An unknown branch: some servers answer an empty 204 instead of a 404.
        Err(refused)
            if refused.message.starts_with("Branch ")
                && engine.behaviour.unknown_branch == UnknownBranch::NoContent =>
        {
            no_content()
        }
        Err(refused) => Reply::refused(refused, &engine.behaviour),
    }
}

/// Answers a POST, PUT or DELETE.
pub fn write(engine: &mut Engine, req: &ApiRequest, ctx: &Context<'_>) -> Reply {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let result = match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["result", key, "label"]) => add_label(engine, key, &req.body),
        ("POST", ["result", key, "comment"]) => add_comment(engine, ctx, key, &req.body),
        ("DELETE", ["result", key, "label", name]) => remove_label(engine, key, name),
        ("POST", ["queue", plan]) => queue_new(engine, req, ctx, plan),
        ("PUT", ["queue", build]) => continue_build(engine, req, ctx, build),
        ("DELETE", ["queue", build]) => split_build_key(build)
            .and_then(|(plan, n)| n.ok_or_else(|| not_found(build)).map(|n| (plan, n)))
            .and_then(|(plan, n)| engine.stop(plan, n, ctx.now).map(|()| no_content())),
        _ => Err(no_route()),
    };
    result.unwrap_or_else(|refused| Reply::refused(refused, &engine.behaviour))
}

fn no_route() -> Refused {
    Refused {
        status: 404,
        message: "HTTP 404 Not Found".into(),
    }
}

fn not_found(what: &str) -> Refused {
    Refused {
        status: 404,
        message: format!("{what} not found"),
    }
}

fn info() -> Reply {
    ok(
        "info",
        &json!({
            "version": "12.1.8",
            "edition": "",
            "buildDate": "2026-06-01T11:23:19.000Z",
            "buildNumber": "120109",
            "specsVersion": "12.1.8",
            "state": "RUNNING",
        }),
    )
}

/// `PROJ-PLAN-12` → (`PROJ-PLAN`, Some(12)); `PROJ-PLAN-latest` → (`PROJ-PLAN`, None).
fn split_build_key(key: &str) -> Result<(&str, Option<u32>), Refused> {
    let (plan, last) = key.rsplit_once('-').ok_or_else(|| not_found(key))?;
    if !plan.contains('-') {
        return Err(not_found(key));
    }
    match last {
        "latest" => Ok((plan, None)),
        n => n
            .parse()
            .map(|n| (plan, Some(n)))
            .map_err(|_| not_found(key)),
    }
}

fn result_for_key(
    engine: &Engine,
    req: &ApiRequest,
    ctx: &Context<'_>,
    key: &str,
) -> Result<Reply, Refused> {
    match key.matches('-').count() {
        0 => Ok(latest_listing(engine, req, ctx, Some(key))),
        1 => history(engine.plan(key)?, req, ctx),
        _ => {
            let (plan, number) = key.rsplit_once('-').ok_or_else(|| not_found(key))?;
            one_result(engine, req, ctx, plan, number)
        }
    }
}

fn one_result(
    engine: &Engine,
    req: &ApiRequest,
    ctx: &Context<'_>,
    plan_key: &str,
    number: &str,
) -> Result<Reply, Refused> {
    let plan = engine.plan(plan_key)?;
    let build = if number == "latest" {
        // As a listing: a build still running is the latest only with `includeAllStates`.
        plan.builds
            .values()
            .rev()
            .find(|b| listed(req, ctx, b))
            .ok_or_else(|| not_found(&format!("{plan_key}-latest")))?
    } else {
        let n: u32 = number
            .parse()
            .map_err(|_| not_found(&format!("{plan_key}-{number}")))?;
        plan.builds
            .get(&n)
            .ok_or_else(|| not_found_build(plan_key, n))?
    };
    Ok(ok(
        "result",
        &view::result(&result_view(ctx, req, plan, build)),
    ))
}

fn result_view<'a>(
    ctx: &Context<'a>,
    req: &ApiRequest,
    plan: &'a PlanState,
    build: &'a Build,
) -> ResultView<'a> {
    // `expand=stages` is the top level; `results.result.stages` the same inside a listing.
    let stages = req.expands("stages") || req.expands("results.result.stages");
    let jobs =
        req.expands("stages.stage.results") || req.expands("results.result.stages.stage.results");
    let expands = |what: &str| req.expands(what) || req.expands(&format!("results.result.{what}"));
    ResultView {
        base: ctx.base,
        plan,
        build,
        stages,
        jobs,
        labels: expands("labels"),
        label_page: ctx.paging.label_page,
        vcs_revisions: expands("vcsRevisions"),
        changes: expands("changes"),
        comments: expands("comments"),
    }
}

/// Which builds a listing shows: without `includeAllStates=true`, queued and running builds
/// are left out, as on older servers.
fn listed(req: &ApiRequest, ctx: &Context<'_>, build: &Build) -> bool {
    if build.execution.is_some() && (!req.flag("includeAllStates") || ctx.quirks.hide_running) {
        return false;
    }
    if req.param("continuable").is_some() && req.flag("continuable") != view::is_continuable(build)
    {
        return false;
    }
    let differs = |wanted: Option<&str>, actual: &str| {
        wanted.is_some_and(|w| !actual.eq_ignore_ascii_case(w))
    };
    if differs(req.param("buildstate"), view::build_state(build))
        || differs(req.param("lifeCycleState"), view::life_cycle_state(build))
    {
        return false;
    }
    req.params("label")
        .all(|label| build.labels.iter().any(|l| l == label))
}

fn page(req: &ApiRequest, paging: &Paging) -> (usize, usize) {
    let start = req
        .param("start-index")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let asked = req
        .param("max-results")
        .or_else(|| req.param("max-result"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(paging.default_size);
    (start, paging.cap.map_or(asked, |cap| asked.min(cap)))
}

/// A page of build results: history, or the latest build of each plan of a listing.
#[derive(Serialize)]
struct Listing<'a> {
    expand: &'static str,
    link: view::Link,
    results: view::Collection<view::ResultJson<'a>>,
}

/// One page of a listing; only the shown builds are turned into JSON.
fn paged(
    builds: Vec<(&PlanState, &Build)>,
    req: &ApiRequest,
    ctx: &Context<'_>,
    path: &str,
) -> Reply {
    let (start, max) = page(req, ctx.paging);
    let mut size = builds.len();
    let shown: Vec<view::ResultJson> = builds
        .into_iter()
        .skip(start)
        .take(max)
        .map(|(p, b)| {
            let mut view = result_view(ctx, req, p, b);
            view.stages &= !ctx.quirks.without_stages;
            view::result(&view)
        })
        .collect();
    if ctx.quirks.size_is_page_length {
        size = shown.len();
    }
    // Like Data Center 10: without `expand=results.result…` a listing has counts but no
    // array. `max-result` echoes the page size asked for, not the items shown.
    let mut results = view::collection("result", shown, size, start, max);
    if !req.expands("results.result") {
        results.items = None;
    }
    let listing = Listing {
        expand: "results",
        link: view::link(ctx.base, path),
        results,
    };
    ok("results", &listing)
}

fn history(plan: &PlanState, req: &ApiRequest, ctx: &Context<'_>) -> Result<Reply, Refused> {
    let builds = plan
        .builds
        .values()
        .rev()
        .filter(|b| listed(req, ctx, b))
        .map(|b| (plan, b))
        .collect();
    Ok(paged(builds, req, ctx, &format!("result/{}", plan.key)))
}

/// `GET result` and `GET result/PROJ`: the latest build of every default-branch plan.
fn latest_listing(
    engine: &Engine,
    req: &ApiRequest,
    ctx: &Context<'_>,
    project: Option<&str>,
) -> Reply {
    // Plans are keyed `PROJ-PLAN`: a project's plans are one range of the map, not a scan of
    // every plan of the server per page.
    let prefix = project.map_or(String::new(), |k| format!("{k}-"));
    let builds = engine
        .plans
        .range(prefix.clone()..)
        .take_while(|(key, _)| key.starts_with(&prefix))
        .map(|(_, plan)| plan)
        .filter(|p| p.branch_of.is_none() && project.is_none_or(|k| p.project_key == k))
        .filter_map(|p| {
            p.builds
                .values()
                .rev()
                .find(|b| listed(req, ctx, b))
                .map(|b| (p, b))
        })
        .collect();
    paged(
        builds,
        req,
        ctx,
        &project.map_or("result".into(), |k| format!("result/{k}")),
    )
}

fn branch_key(engine: &Engine, plan_key: &str, name: &str) -> Result<String, Refused> {
    let plan = engine.plan(plan_key)?;
    plan.branches
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, key)| key.clone())
        .ok_or_else(|| Refused {
            status: 404,
            message: format!("Branch {name} of plan {plan_key} not found"),
        })
}

fn branches(
    engine: &Engine,
    req: &ApiRequest,
    ctx: &Context<'_>,
    plan_key: &str,
) -> Result<Reply, Refused> {
    let plan = engine.plan(plan_key)?;
    let (start, max) = page(req, ctx.paging);
    let all: Vec<&PlanState> = plan
        .branches
        .iter()
        .filter_map(|(_, key)| engine.plans.get(key))
        .collect();
    let count = all.len();
    let items: Vec<view::BranchJson> = all
        .into_iter()
        .skip(start)
        .take(max)
        .map(|b| view::branch(ctx.base, b))
        .collect();
    Ok(ok(
        "branches",
        &json!({
            "expand": "branches",
            "link": view::link(ctx.base, &format!("plan/{plan_key}/branch")),
            "branches": view::collection("branch", items, count, start, max),
        }),
    ))
}

fn queue(engine: &Engine, ctx: &Context<'_>) -> Reply {
    let items: Vec<view::Queued> = engine
        .plans
        .values()
        .flat_map(|p| {
            p.builds
                .values()
                .filter(|b| b.execution.as_ref().is_some_and(|e| e.started_at.is_none()))
                .map(move |b| (p, b))
        })
        .map(|(p, b)| view::queued(ctx.base, &p.key, b.number, &b.trigger_reason))
        .collect();
    let count = items.len();
    ok(
        "queue",
        &json!({
            "expand": "queuedBuilds",
            "link": view::link(ctx.base, "queue"),
            "queuedBuilds": view::collection("queuedBuild", items, count, 0, count),
        }),
    )
}

fn queue_request(req: &ApiRequest) -> QueueRequest {
    QueueRequest {
        stage: req
            .param("stage")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        execute_all_stages: req.flag("executeAllStages"),
        custom_revision: req.param("customRevision").map(str::to_string),
        arrived_ms: req.arrived_ms,
    }
}

fn queue_new(
    engine: &mut Engine,
    req: &ApiRequest,
    ctx: &Context<'_>,
    plan: &str,
) -> Result<Reply, Refused> {
    let request = queue_request(req);
    let number = engine.queue_new(plan, &request, ctx.now)?;
    let reason = if request.custom_revision.is_some() {
        "Custom revision build"
    } else {
        "Manual build"
    };
    Ok(ok(
        "restQueuedBuild",
        &view::queued(ctx.base, plan, number, reason),
    ))
}

fn continue_build(
    engine: &mut Engine,
    req: &ApiRequest,
    ctx: &Context<'_>,
    key: &str,
) -> Result<Reply, Refused> {
    let (plan, number) = split_build_key(key)?;
    let number = number.ok_or_else(|| not_found(key))?;
    engine.continue_build(plan, number, &queue_request(req), ctx.now)?;
    Ok(ok(
        "restQueuedBuild",
        &view::queued(ctx.base, plan, number, "Manual build"),
    ))
}

fn build_mut<'a>(engine: &'a mut Engine, key: &str) -> Result<&'a mut Build, Refused> {
    let (plan, number) = split_build_key(key)?;
    let number = number.ok_or_else(|| not_found(key))?;
    let plan = engine.plans.get_mut(plan).ok_or_else(|| not_found(plan))?;
    plan.builds.get_mut(&number).ok_or_else(|| not_found(key))
}

/// A build's labels, a page at a time like any collection (and no more than a result lists
/// when the world pages labels).
fn labels(
    engine: &Engine,
    req: &ApiRequest,
    ctx: &Context<'_>,
    key: &str,
) -> Result<Reply, Refused> {
    let (plan, number) = split_build_key(key)?;
    let number = number.ok_or_else(|| not_found(key))?;
    let plan = engine.plans.get(plan).ok_or_else(|| not_found(plan))?;
    let build = plan.builds.get(&number).ok_or_else(|| not_found(key))?;
    let (start, max) = page(req, ctx.paging);
    let max = ctx.paging.label_page.map_or(max, |cap| max.min(cap));
    let labels = view::labels_page(build, start, max);
    Ok(ok(
        "labels",
        &json!({ "expand": "labels", "labels": labels }),
    ))
}

fn add_label(engine: &mut Engine, key: &str, body: &[u8]) -> Result<Reply, Refused> {
    let name = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Refused {
            status: 400,
            message: "Label name is required".into(),
        })?;
    let name = stored_label(engine, &name);
    let build = build_mut(engine, key)?;
    if !build.labels.contains(&name) {
        build.labels.push(name);
    }
    Ok(no_content())
}

/// A label as this server keeps it (see `Behaviour::labels`).
fn stored_label(engine: &Engine, name: &str) -> String {
    match engine.behaviour.labels {
        LabelCase::Keep => name.to_string(),
        LabelCase::Fold => name
            .trim()
            .chars()
            .map(|c| {
                if c.is_whitespace() || ":;,?&[]()#^*@!/\\".contains(c) {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect(),
    }
}

/// `GET result/{key}/comment`: `{"comments": {"size", ..., "comment": [{"content", ...}]}}`.
fn comments(engine: &Engine, key: &str) -> Result<Reply, Refused> {
    let (plan, number) = split_build_key(key)?;
    let number = number.ok_or_else(|| not_found(key))?;
    let plan = engine.plans.get(plan).ok_or_else(|| not_found(plan))?;
    let build = plan.builds.get(&number).ok_or_else(|| not_found(key))?;
    let items: Vec<Value> = build
        .comments
        .iter()
        .map(|(content, at)| {
            json!({
                "author": "bamboo-promote",
                "content": content,
                "creationDate": view::timestamp(*at),
                "modificationDate": view::timestamp(*at),
            })
        })
        .collect();
    let count = items.len();
    Ok(ok(
        "comments",
        &json!({ "expand": "comments", "comments": view::collection("comment", items, count, 0, count) }),
    ))
}

/// `POST result/{key}/comment` with `{"content": "..."}`.
fn add_comment(
    engine: &mut Engine,
    ctx: &Context<'_>,
    key: &str,
    body: &[u8],
) -> Result<Reply, Refused> {
    let content = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("content").and_then(Value::as_str).map(str::to_string))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Refused {
            status: 400,
            message: "Comment content is required".into(),
        })?;
    build_mut(engine, key)?.comments.push((content, ctx.now));
    Ok(no_content())
}

fn remove_label(engine: &mut Engine, key: &str, name: &str) -> Result<Reply, Refused> {
    let name = stored_label(engine, name);
    let build = build_mut(engine, key)?;
    build.labels.retain(|l| *l != name);
    Ok(no_content())
}
