//! The HTTP face of the simulator (axum): authentication, the XSRF rule, JSON or XML, injected
//! faults and the request log around the REST routes, and the `/_sim` control endpoints that
//! tests use to move the clock, read the log and set faults.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::clock::Clock;
use super::engine::Engine;
use super::faults::FaultPlan;
use super::log::LoggedRequest;
use super::routes::{self, ApiRequest, Context, ListingQuirks, Paging};
use super::world::{EncodedSlash, Fault, Faults, Permission, World};
use super::{view, xml};

struct Shared {
    world: World,
    clock: Clock,
    base: String,
    paging: Paging,
    /// Reads share the engine, so that listing pages are built side by side; writes and the
    /// clock take it alone.
    engine: RwLock<Engine>,
    faults: Mutex<FaultPlan>,
    log: Mutex<Vec<LoggedRequest>>,
    in_flight: AtomicUsize,
    seq: AtomicU64,
    started: std::time::Instant,
    /// Moved on by every reset: a write held for later belongs to the world it arrived in.
    generation: AtomicU64,
}

/// A running simulator.
pub struct SimServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl SimServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `world` on `listener` until the returned handle is dropped.
pub fn spawn(world: World, listener: TcpListener) -> Result<SimServer, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    let shared = shared(world, &base)?;
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimServer {
        addr,
        shutdown: Some(tx),
    })
}

/// A simulator without a socket: requests are handed to it in memory (`answer_in_memory`), on
/// whatever clock the runtime has. The fault-space explorer's Bamboo.
pub struct InMemory {
    shared: Arc<Shared>,
}

impl InMemory {
    /// The simulator of `world`, as if served at `base` (the links in its answers).
    pub fn new(world: World, base: &str) -> Result<InMemory, String> {
        shared(world, base).map(|shared| InMemory { shared })
    }

    /// Answers one request as the HTTP server would, faults and delivery delays included;
    /// a request whose answer never comes never returns (the caller's timeout ends it).
    pub async fn answer(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        serve(self.shared.clone(), method, uri, headers, body).await
    }

    /// The engine, moved on to now: the ground truth the explorer checks.
    pub fn engine<T>(&self, read: impl FnOnce(&Engine) -> T) -> T {
        let mut engine = self.shared.engine.write().expect("engine lock");
        engine.advance(self.shared.clock.now());
        read(&engine)
    }

    /// Changes the engine, moved on to now: what a person does in Bamboo's UI meanwhile.
    pub fn change<T>(&self, write: impl FnOnce(&mut Engine) -> T) -> T {
        let mut engine = self.shared.engine.write().expect("engine lock");
        engine.advance(self.shared.clock.now());
        write(&mut engine)
    }

    /// The sim clock, in ms since it started.
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.lock().expect("log lock").clone()
    }
}

fn shared(world: World, base: &str) -> Result<Arc<Shared>, String> {
    let clock = Clock::new(world.settings.clock);
    let engine = Engine::new(&world, clock.now())?;
    let base = format!(
        "{base}{}",
        world.settings.context_path.trim_end_matches('/')
    );
    Ok(Arc::new(Shared {
        paging: Paging {
            default_size: world.settings.default_page_size,
            cap: world.settings.page_cap,
            label_page: world.settings.label_page,
        },
        engine: RwLock::new(engine),
        faults: Mutex::new(FaultPlan::new(world.faults.clone())),
        log: Mutex::new(Vec::new()),
        world,
        clock,
        base,
        in_flight: AtomicUsize::new(0),
        seq: AtomicU64::new(0),
        started: std::time::Instant::now(),
        generation: AtomicU64::new(0),
    }))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(shared, method, uri, headers, body).await
}

async fn serve(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if let Some(control) = path.strip_prefix("/_sim/") {
        return control_endpoint(&shared, &method, control, uri.query().unwrap_or(""), &body);
    }
    let prefix = format!(
        "{}/rest/api/latest/",
        shared.world.settings.context_path.trim_end_matches('/')
    );
    let Some(api_path) = path.strip_prefix(&prefix) else {
        return json_response(404, &view::error(404, "HTTP 404 Not Found"));
    };
    // Tomcat's default: an encoded `/` in a path is a bad request, before Bamboo sees it.
    let encoded_slash = api_path.to_ascii_lowercase().contains("%2f");
    if encoded_slash && shared.world.settings.behaviour.encoded_slash == EncodedSlash::Reject {
        shared.log.lock().expect("log lock").push(LoggedRequest {
            seq: shared.seq.fetch_add(1, Ordering::SeqCst),
            method: method.to_string(),
            path: api_path.to_string(),
            query: uri.query().unwrap_or("").to_string(),
            status: 400,
            in_flight: shared.in_flight.load(Ordering::SeqCst),
            at_ms: shared.clock.now(),
            wall_ms: shared.started.elapsed().as_millis() as u64,
        });
        return tomcat_bad_request();
    }
    let _guard = InFlight::enter(&shared.in_flight);
    let in_flight = shared.in_flight.load(Ordering::SeqCst);
    let latency = shared.faults.lock().expect("faults lock").config.latency_ms;
    if latency > 0 {
        added_latency(Duration::from_millis(latency)).await;
    }
    let wants_json = api_path.ends_with(".json") || accepts_json(&headers);
    let api_path = api_path
        .strip_suffix(".json")
        .unwrap_or(api_path)
        .to_string();
    let query = uri.query().unwrap_or("").to_string();
    let arrived = shared.clock.now();
    let mut entry = LoggedRequest {
        seq: shared.seq.fetch_add(1, Ordering::SeqCst),
        method: method.to_string(),
        path: api_path.clone(),
        query: query.clone(),
        status: 0,
        in_flight,
        at_ms: arrived,
        wall_ms: shared.started.elapsed().as_millis() as u64,
    };
    let (mut response, delivery) = answer(
        &shared, &method, &api_path, &query, &headers, body, wants_json,
    );
    // Every answer carries the server's time, as real servers' do: clients take lease times
    // from it. A held answer keeps the time it was made at; a stale one is older.
    let stale = match &delivery {
        Delivery::Stale(ms) => *ms,
        _ => 0,
    };
    let offset = shared
        .faults
        .lock()
        .expect("faults lock")
        .config
        .date_offset_ms;
    let date = view::http_date(shared.clock.now() as i64 - stale as i64 + offset);
    if let Ok(date) = header::HeaderValue::from_str(&date) {
        response.headers_mut().insert(header::DATE, date);
    }
    if matches!(
        delivery,
        Delivery::Answer | Delivery::After(_) | Delivery::Stale(_)
    ) {
        entry.status = response.status().as_u16();
    }
    shared.log.lock().expect("log lock").push(entry);
    match delivery {
        Delivery::Answer | Delivery::Drop | Delivery::Stale(_) => {}
        Delivery::After(ms) => until_clock(&shared.clock, arrived + ms).await,
        Delivery::Withhold => withhold().await,
        Delivery::Late(ms, request) => {
            // Like a proxy that holds the write: it reaches the server later, whether or not
            // the client is still there, and the client never hears back.
            let late = shared.clone();
            let generation = shared.generation.load(Ordering::SeqCst);
            tokio::spawn(async move {
                until_clock(&late.clock, arrived + ms).await;
                if late.generation.load(Ordering::SeqCst) == generation {
                    reply(&late, &request, late.clock.now());
                }
            });
            withhold().await;
        }
    }
    response
}

/// The server acted (or will), but its answer never reaches the client, which times out.
async fn withhold() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

/// Returns once the sim clock reads `due` (moved by a test in manual mode, by time otherwise).
async fn until_clock(clock: &Clock, due: u64) {
    while clock.now() < due {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Answers a GET. Reads share the engine; only when builds are in flight does one first take it
/// alone to move them to the present (a waiting writer would hold every later reader back).
fn read(shared: &Shared, request: &ApiRequest, ctx: &Context<'_>) -> routes::Reply {
    let engine = shared.engine.read().expect("engine lock");
    if engine.is_idle() {
        return routes::read(&engine, request, ctx);
    }
    drop(engine);
    shared.engine.write().expect("engine lock").advance(ctx.now);
    // Another request may move the engine on in between: this one then answers with a state
    // a moment later, as a busy server would.
    routes::read(&shared.engine.read().expect("engine lock"), request, ctx)
}

/// Holds a request for `latency`, and not noticeably longer: benchmarks compare wall times
/// with `ceil(requests / parallelism) × latency`. tokio's timer rounds a deadline up to the
/// next millisecond and wakes late (a 20 ms sleep averaged 21.8 ms here, up to 26 ms), so the
/// wait is a thread sleep on the blocking pool, which lands within a fraction of a millisecond.
async fn added_latency(latency: Duration) {
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(latency)).await;
}

/// How an answer reaches the client.
enum Delivery {
    Answer,
    /// The connection breaks before the answer arrives.
    Drop,
    /// The server acted but the answer never comes.
    Withhold,
    /// The answer, made on arrival, is delivered once the sim clock has moved this far.
    After(u64),
    /// The write is applied once the sim clock has moved this far; no answer ever comes.
    Late(u64, ApiRequest),
    /// Answered at once, with a `Date` this much older than the sim clock.
    Stale(u64),
}

/// Answers one REST request, and says how the answer is to be delivered.
fn answer(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
    wants_json: bool,
) -> (Response, Delivery) {
    let (fault, retry_after) = {
        let mut faults = shared.faults.lock().expect("faults lock");
        (
            faults.pick(method.as_str(), path),
            faults.config.retry_after_secs,
        )
    };
    let (fault, after_ms) = fault.map_or((None, 0), |(f, ms)| (Some(f), ms));
    match fault {
        Some(Fault::ServerError) => {
            return (
                json_response(503, &view::error(503, "Service Unavailable")),
                Delivery::Answer,
            );
        }
        Some(Fault::RateLimit) => {
            return (rate_limited(retry_after), Delivery::Answer);
        }
        Some(Fault::Drop) if method == Method::GET => {
            return (dropped_connection(), Delivery::Drop);
        }
        _ => {}
    }
    let is_write = method != Method::GET;
    // As a token's permissions in Bamboo: READ reads; TRIGGER also starts and continues
    // builds; only USER (the token acts as its user) labels and comments.
    let needed = if !is_write {
        Permission::Read
    } else if path.starts_with("queue") {
        Permission::Trigger
    } else {
        Permission::User
    };
    if let Err(status) = authorize(&shared.world, headers, query, needed) {
        let message = if status == 401 {
            "You must be logged in to access this resource"
        } else {
            "You do not have permission to do this"
        };
        return (
            json_response(status, &view::error(status, message)),
            Delivery::Answer,
        );
    }
    if lacks_length(method, headers) {
        return (
            json_response(411, &view::error(411, "Length Required")),
            Delivery::Answer,
        );
    }
    if is_write && fails_xsrf(headers) {
        return (
            json_response(403, &view::error(403, "XSRF check failed")),
            Delivery::Answer,
        );
    }
    let (path, query) = match fault {
        Some(Fault::OtherBuild) => (other_build(shared, path), query.to_string()),
        Some(Fault::IgnoreFilter) => (
            path.to_string(),
            without(
                query,
                &["label", "buildstate", "continuable", "lifeCycleState"],
            ),
        ),
        Some(Fault::IgnorePaging) => (path.to_string(), without(query, &["start-index"])),
        _ => (path.to_string(), query.to_string()),
    };
    let request = ApiRequest::new(
        method.as_str(),
        &path,
        &query,
        body.to_vec(),
        shared.clock.now(),
    );
    if fault == Some(Fault::ApplyLate) {
        return (empty_response(200), Delivery::Late(after_ms, request));
    }
    if fault == Some(Fault::Swallow) && is_write {
        let status = if path.starts_with("queue/") { 200 } else { 204 };
        return (empty_response(status), Delivery::Answer);
    }
    let reply = reply(shared, &request, shared.clock.now());
    let response = match (reply.body, wants_json) {
        (None, _) => empty_response(reply.status),
        (Some(body), true) => json_text_response(reply.status, body),
        (Some(body), false) => {
            let tree: Value = serde_json::from_str(&body).expect("the simulator's own JSON");
            xml_response(reply.status, &xml::render(reply.root, &tree))
        }
    };
    match fault {
        Some(Fault::Drop) => (dropped_connection(), Delivery::Drop),
        Some(Fault::LoseResponse) => (response, Delivery::Withhold),
        Some(Fault::Hold) => (response, Delivery::After(after_ms)),
        Some(Fault::AppliedServerError) => (
            json_response(500, &view::error(500, "Internal Server Error")),
            Delivery::Answer,
        ),
        Some(Fault::AppliedRateLimit) => (rate_limited(retry_after), Delivery::Answer),
        Some(Fault::AppliedGarbage) => (html_page(), Delivery::Answer),
        Some(Fault::StaleDate) => (response, Delivery::Stale(after_ms)),
        _ => (response, Delivery::Answer),
    }
}

/// Reads share the engine; writes take it alone.
fn reply(shared: &Shared, request: &ApiRequest, now: u64) -> routes::Reply {
    let quirks = {
        let faults = &shared.faults.lock().expect("faults lock").config;
        ListingQuirks {
            without_stages: faults.listings_without_stages,
            hide_running: faults.listings_hide_running,
            size_is_page_length: faults.size_is_page_length,
        }
    };
    let ctx = Context {
        base: &shared.base,
        now,
        paging: &shared.paging,
        quirks,
    };
    if request.method == "GET" {
        read(shared, request, &ctx)
    } else {
        let mut engine = shared.engine.write().expect("engine lock");
        engine.advance(now);
        routes::write(&mut engine, request, &ctx)
    }
}

/// `result/{plan}-{n}` turned into the newest other build of the plan; any other path as it is.
fn other_build(shared: &Shared, path: &str) -> String {
    let Some((plan, number)) = path
        .strip_prefix("result/")
        .and_then(|key| key.rsplit_once('-'))
    else {
        return path.to_string();
    };
    let engine = shared.engine.read().expect("engine lock");
    let other = engine.plans.get(plan).and_then(|p| {
        p.builds
            .keys()
            .rev()
            .find(|n| n.to_string() != number)
            .copied()
    });
    other.map_or(path.to_string(), |n| format!("result/{plan}-{n}"))
}

/// The query without the filters a listing can take.
/// The query without the parameters named: what a server that does not know them reads.
fn without(query: &str, names: &[&str]) -> String {
    let kept = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| !names.contains(&&**k));
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish()
}

/// What a proxy's error page or a login page looks like to a client that asked for JSON.
/// Tomcat's answer to a path it refuses: 400 with an HTML page.
fn tomcat_bad_request() -> Response {
    let mut response = Response::new(axum::body::Body::from(
        "<!doctype html><html><head><title>HTTP Status 400 – Bad Request</title></head><body><h1>HTTP Status 400 – Bad Request</h1></body></html>",
    ));
    *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html;charset=utf-8"),
    );
    response
}

fn html_page() -> Response {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/html;charset=UTF-8")
        .body(Body::from(
            "<!DOCTYPE html><html><head><title>Log in</title></head><body>Please log in</body></html>",
        ))
        .expect("valid response")
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

/// Bamboo refuses form and plain-text bodies on writes unless the client says it is not a
/// browser; JSON bodies and empty bodies pass.
/// A write without `X-Atlassian-Token: no-check`: Data Center 10.2 refuses it with 403,
/// whatever its content type (a probe got exactly that).
fn fails_xsrf(headers: &HeaderMap) -> bool {
    let no_check = headers
        .get("X-Atlassian-Token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("no-check") || v.eq_ignore_ascii_case("nocheck"));
    !no_check
}

/// A PUT or POST that says nothing of its body's length: a proxy before Bamboo answers 411.
fn lacks_length(method: &Method, headers: &HeaderMap) -> bool {
    matches!(*method, Method::PUT | Method::POST)
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
}

fn authorize(
    world: &World,
    headers: &HeaderMap,
    query: &str,
    needed: Permission,
) -> Result<(), u16> {
    let auth = &world.auth;
    let open = auth.tokens.is_empty() && auth.users.is_empty();
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let granted: &[Permission] = match credentials {
        Some(value) if value.starts_with("Bearer ") => {
            let token = &value["Bearer ".len()..];
            auth.tokens
                .iter()
                .find(|t| t.token == token)
                .map(|t| t.permissions.as_slice())
                .ok_or(401u16)?
        }
        Some(value) if value.starts_with("Basic ") && query.contains("os_authType=basic") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&value["Basic ".len()..])
                .map_err(|_| 401u16)?;
            let decoded = String::from_utf8(decoded).map_err(|_| 401u16)?;
            let (user, password) = decoded.split_once(':').ok_or(401u16)?;
            auth.users
                .iter()
                .find(|u| u.username == user && u.password == password)
                .map(|u| u.permissions.as_slice())
                .ok_or(401u16)?
        }
        _ => match &auth.anonymous {
            Some(perms) => perms.as_slice(),
            None if open => &[Permission::User],
            None => &[],
        },
    };
    // Each permission includes the ones before it, as Bamboo's token permissions depend on
    // each other.
    if granted.iter().any(|g| *g >= needed) {
        Ok(())
    } else if granted.is_empty() {
        Err(401)
    } else {
        Err(403)
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn json_response(status: u16, body: &impl serde::Serialize) -> Response {
    json_text_response(status, routes::to_json(body))
}

fn json_text_response(status: u16, text: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json;charset=UTF-8")
        .body(Body::from(text))
        .expect("valid response")
}

fn xml_response(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml;charset=UTF-8")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

fn empty_response(status: u16) -> Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .expect("valid response")
}

fn rate_limited(retry_after: u64) -> Response {
    Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header(header::RETRY_AFTER, retry_after.to_string())
        .header("X-RateLimit-Limit", "10")
        .header("X-RateLimit-Remaining", "0")
        .header(header::CONTENT_TYPE, "application/json;charset=UTF-8")
        .body(Body::from(routes::to_json(&view::error(
            429,
            "Too Many Requests",
        ))))
        .expect("valid response")
}

/// Promises a body and then fails it: the server closes the connection mid-answer, which the
/// client sees as a dropped connection.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by the simulator",
        ))
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_LENGTH, "1024")
        .body(Body::from_stream(failing))
        .expect("valid response")
}

fn control_endpoint(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Response {
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let log = || shared.log.lock().expect("log lock");
    let faults = || shared.faults.lock().expect("faults lock");
    let engine = || shared.engine.write().expect("engine lock");
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "requests") => json_response(200, &*log()),
        ("DELETE", "requests") => {
            log().clear();
            empty_response(204)
        }
        ("POST", "reset") => {
            // All three at once, so that no request sees a fresh world with old faults. No
            // other path holds two of these locks together, so the order cannot deadlock.
            let (mut engine, mut faults, mut log) = (engine(), faults(), log());
            shared.generation.fetch_add(1, Ordering::SeqCst);
            shared.clock.reset();
            match Engine::new(&shared.world, shared.clock.now()) {
                Ok(fresh) => *engine = fresh,
                Err(e) => return json_response(500, &json!({ "message": e })),
            }
            *faults = FaultPlan::new(shared.world.faults.clone());
            log.clear();
            empty_response(204)
        }
        ("GET", "clock") => json_response(200, &json!({ "nowMs": shared.clock.now() })),
        ("POST", "clock/advance") => {
            let ms = param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            shared.clock.advance(ms);
            let now = shared.clock.now();
            engine().advance(now);
            json_response(200, &json!({ "nowMs": now }))
        }
        ("GET", "faults") => json_response(200, &faults().config),
        ("PUT" | "POST", "faults") => match serde_json::from_slice::<Faults>(body) {
            Ok(config) => {
                *faults() = FaultPlan::new(config);
                empty_response(204)
            }
            Err(e) => json_response(400, &json!({ "message": format!("invalid faults: {e}") })),
        },
        ("GET", "runs") => {
            let mut engine = engine();
            engine.advance(shared.clock.now());
            json_response(200, &stage_runs(&engine))
        }
        _ => json_response(
            404,
            &json!({ "message": format!("no control endpoint {method} /_sim/{path}") }),
        ),
    }
}

/// `{"SHOP-APP-12": [{"stage": "Build", "runs": 1}, ...]}`: how often each stage started, in
/// the plan's stage order.
fn stage_runs(engine: &Engine) -> Value {
    let mut out = serde_json::Map::new();
    for plan in engine.plans.values() {
        for build in plan.builds.values() {
            let runs: Vec<Value> = plan
                .stages
                .iter()
                .zip(&build.stages)
                .map(|(d, r)| json!({ "stage": d.name, "runs": r.runs }))
                .collect();
            out.insert(format!("{}-{}", plan.key, build.number), Value::Array(runs));
        }
    }
    Value::Object(out)
}
