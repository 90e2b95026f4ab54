//! The simulator's HTTP side: `GET /api/now/table/{table}[/{sys_id}]` and
//! `POST /oauth_token.do`, answering like ServiceNow (the `{"result": …}` envelope, string
//! values, references as `{link, value}`, `X-Total-Count`, `Link`, `{"error": …}` failures).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Simulator, now};
use crate::client::format_http_date;
use crate::query::Query;
use crate::tables;

/// The largest page ServiceNow serves by default (`glide.json.query.max`-like).
const MAX_LIMIT: usize = 10_000;

type Body = Full<Bytes>;

/// Serves plain HTTP on `listener` until `stop`.
pub async fn serve(simulator: Arc<Simulator>, listener: TcpListener, stop: CancellationToken) -> Result<(), String> {
    serve_tls(simulator, listener, None, stop).await
}

/// Serves on `listener`, over TLS when `tls` is given, until `stop`.
pub async fn serve_tls(
    simulator: Arc<Simulator>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) -> Result<(), String> {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted.map_err(|e| format!("accepting: {e}"))?,
        };
        let simulator = simulator.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                let simulator = simulator.clone();
                async move { Ok::<_, Infallible>(handle(&simulator, request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let result = match tls {
                None => builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await,
                    Err(error) => {
                        tracing::debug!(%error, "simulator TLS handshake failed");
                        return;
                    }
                },
            };
            if let Err(error) = result {
                tracing::debug!(%error, "simulator connection ended");
            }
        });
    }
}

fn respond(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    if let Ok(date) = HeaderValue::from_str(&format_http_date(now())) {
        headers.insert(header::DATE, date);
    }
    response
}

/// The simulator's own control, no part of ServiceNow's API: `POST /sim/churn?changes=N`
/// (basic auth) changes N records as [`Simulator::churn`] does, so a benchmark or a test in
/// another process can make an incremental sync's worth of changes; answers the counts.
fn churn(simulator: &Simulator, request: &Request<hyper::body::Incoming>) -> Response<Body> {
    if request.method() != Method::POST {
        return failure(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "");
    }
    if !authenticated(simulator, request) {
        return failure(StatusCode::UNAUTHORIZED, "User Not Authenticated", "Required to provide Auth information");
    }
    let changes = request
        .uri()
        .query()
        .and_then(|query| url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "changes"))
        .and_then(|(_, value)| value.parse::<usize>().ok());
    let Some(changes) = changes.filter(|changes| *changes <= 1_000_000) else {
        return failure(StatusCode::BAD_REQUEST, "changes must be a number up to 1000000", "");
    };
    let churn = simulator.churn(changes);
    let count = |sets: &std::collections::BTreeMap<&'static str, std::collections::BTreeSet<String>>| {
        sets.values().map(|ids| ids.len()).sum::<usize>()
    };
    respond(
        StatusCode::OK,
        json!({"updated": count(&churn.updated), "created": count(&churn.created), "deleted": count(&churn.deleted)}),
    )
}

/// ServiceNow's failure body.
fn failure(status: StatusCode, message: &str, detail: &str) -> Response<Body> {
    let detail = if detail.is_empty() { Value::Null } else { Value::String(detail.into()) };
    respond(status, json!({"error": {"message": message, "detail": detail}, "status": "failure"}))
}

async fn handle(simulator: &Simulator, request: Request<hyper::body::Incoming>) -> Response<Body> {
    if !simulator.config.latency.is_zero() {
        tokio::time::sleep(simulator.config.latency).await;
    }
    let path = request.uri().path().to_string();
    if path == "/oauth_token.do" {
        return if request.method() == Method::POST {
            oauth(simulator, request).await
        } else {
            failure(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "")
        };
    }
    if path == "/sim/churn" {
        return churn(simulator, &request);
    }
    let Some(rest) = path.strip_prefix("/api/now/table/") else {
        return failure(StatusCode::BAD_REQUEST, "Requested URI does not represent any resource", &path);
    };
    let writable = WRITABLE.iter().any(|(table, _)| rest.split('/').next() == Some(*table));
    if request.method() != Method::GET && !writable {
        return failure(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "the simulator writes only sp_widget");
    }
    let count = simulator.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if !authenticated(simulator, &request) {
        return failure(StatusCode::UNAUTHORIZED, "User Not Authenticated", "Required to provide Auth information");
    }
    let every = simulator.config.throttle_every;
    if every > 0 && count.is_multiple_of(every) {
        let mut response = failure(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
            "Too many requests for this user; retry after the given time",
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(simulator.config.retry_after_seconds));
        return response;
    }
    if simulator.config.fail_every > 0 && count.is_multiple_of(simulator.config.fail_every) {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", "the node is restarting");
    }
    let (table, sys_id) = match rest.split_once('/') {
        Some((table, id)) => (table, Some(id)),
        None => (rest, None),
    };
    if writable {
        let (table, sys_id) = (table.to_string(), sys_id.map(str::to_string));
        return written(simulator, request, &table, sys_id.as_deref()).await;
    }
    if tables::by_name(table).is_none() {
        return failure(StatusCode::BAD_REQUEST, &format!("Invalid table {table}"), "");
    }
    if simulator.config.denied_tables.iter().any(|denied| denied == table) {
        return failure(StatusCode::FORBIDDEN, "User Not Authorized", "ACL restricts the record retrieval");
    }
    let params: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|query| url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
    let base = format!("http://{host}");
    let links = param("sysparm_exclude_reference_link") != Some("true");
    let fields: Option<Vec<&str>> = param("sysparm_fields").map(|f| f.split(',').map(str::trim).collect());

    if let Some(sys_id) = sys_id {
        return match simulator.record(table, sys_id) {
            Some(record) => {
                respond(StatusCode::OK, json!({"result": render(table, &record, fields.as_deref(), links, &base)}))
            }
            None => failure(
                StatusCode::NOT_FOUND,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            ),
        };
    }

    let query = match Query::parse(param("sysparm_query").unwrap_or("")) {
        Ok(query) => query,
        Err(error) => return failure(StatusCode::BAD_REQUEST, "Invalid query", &error),
    };
    let limit = match param("sysparm_limit").map(str::parse::<usize>) {
        None => MAX_LIMIT,
        Some(Ok(limit)) => limit.clamp(1, MAX_LIMIT),
        Some(Err(_)) => return failure(StatusCode::BAD_REQUEST, "Invalid sysparm_limit", ""),
    };
    let offset = match param("sysparm_offset").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return failure(StatusCode::BAD_REQUEST, "Invalid sysparm_offset", ""),
    };

    // `sysparm_no_count=true` skips counting: the page ends as soon as it is full and one more
    // match shows whether another page follows.
    let count = param("sysparm_no_count") != Some("true");
    let (total, page) = {
        let state = simulator.read();
        let empty = Default::default();
        let records = state.tables.get(table).unwrap_or(&empty);
        // ServiceNow's default order is undefined; the simulator's is sys_id.
        let bound = lower_bound(&query);
        let bound = bound.as_ref().map(|(first, bound)| (first.as_str(), bound.as_str()));
        let (order, start) = simulator.sorted_from(&state, table, &query.order_by, bound);
        let mut matched = 0;
        let mut page = Vec::new();
        for id in &order[start..] {
            let Some(record) = records.get(id) else { continue };
            if !query.matches(|name| record.get(name).map(String::as_str).unwrap_or("")) {
                continue;
            }
            if matched >= offset && page.len() < limit {
                page.push(render(table, record, fields.as_deref(), links, &base));
            }
            matched += 1;
            if !count && matched > offset + limit {
                break;
            }
        }
        (matched, page)
    };
    let mut response = respond(StatusCode::OK, json!({"result": page}));
    let headers = response.headers_mut();
    if count {
        headers.insert("x-total-count", HeaderValue::from(total));
    }
    if let Ok(link) = HeaderValue::from_str(&link_header(&base, table, &params, offset, limit, total)) {
        headers.insert(header::LINK, link);
    }
    response
}

/// Where the first ORDERBY field (ascending) must start for any alternative of `query` to
/// match: the least of the alternatives' lower bounds on it (`>`, `>=`, `=`); `None` when an
/// alternative leaves it unbounded.
fn lower_bound(query: &crate::query::Query) -> Option<(String, String)> {
    use crate::query::Op;
    let (first, descending) = query.order_by.first()?;
    if *descending || query.any_of.is_empty() {
        return None;
    }
    let mut least: Option<&str> = None;
    for alternative in &query.any_of {
        let bound = alternative
            .iter()
            .filter(|condition| condition.field == *first && matches!(condition.op, Op::Gt | Op::Ge | Op::Eq))
            .map(|condition| condition.value.as_str())
            .max()?;
        least = Some(least.map_or(bound, |least| least.min(bound)));
    }
    least.map(|bound| (first.clone(), bound.to_string()))
}

/// A record as the Table API shows it: only the asked fields, references with their link.
fn render(table: &str, record: &super::Record, fields: Option<&[&str]>, links: bool, base: &str) -> Value {
    let mut out = Map::new();
    for (field, value) in record {
        if fields.is_some_and(|wanted| !wanted.contains(field)) {
            continue;
        }
        let target = super::generate::referenced_table(table, field);
        let rendered = match target {
            Some(target) if links && !value.is_empty() => {
                json!({"link": format!("{base}/api/now/table/{target}/{value}"), "value": value})
            }
            _ => Value::String(value.clone()),
        };
        out.insert((*field).to_string(), rendered);
    }
    Value::Object(out)
}

fn link_header(
    base: &str,
    table: &str,
    params: &[(String, String)],
    offset: usize,
    limit: usize,
    total: usize,
) -> String {
    let url = |offset: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in params.iter().filter(|(key, _)| key != "sysparm_offset" && key != "sysparm_limit") {
            query.append_pair(key, value);
        }
        query.append_pair("sysparm_limit", &limit.to_string());
        query.append_pair("sysparm_offset", &offset.to_string());
        format!("{base}/api/now/table/{table}?{}", query.finish())
    };
    let last = if total == 0 { 0 } else { (total - 1) / limit * limit };
    let mut links = vec![format!("<{}>;rel=\"first\"", url(0))];
    if offset > 0 {
        links.push(format!("<{}>;rel=\"prev\"", url(offset.saturating_sub(limit))));
    }
    if offset + limit < total {
        links.push(format!("<{}>;rel=\"next\"", url(offset + limit)));
    }
    links.push(format!("<{}>;rel=\"last\"", url(last)));
    links.join(",")
}

/// Tables the simulator lets a client write, with the columns each keeps: as on a real
/// instance, a column the table does not have is ignored, not refused.
const WRITABLE: [(&str, &[&str]); 1] = [(
    "sp_widget",
    &[
        "name",
        "id",
        "template",
        "css",
        "client_script",
        "script",
        "link",
        "option_schema",
        "demo_data",
        "description",
        "public",
        "roles",
    ],
)];

/// The Table API on a writable table: GET (a query or one record), POST, PATCH, DELETE.
async fn written(
    simulator: &Simulator,
    request: Request<hyper::body::Incoming>,
    table: &str,
    sys_id: Option<&str>,
) -> Response<Body> {
    let method = request.method().clone();
    if method != Method::GET && simulator.config.write_denied_tables.iter().any(|denied| denied == table) {
        return failure(StatusCode::FORBIDDEN, "User Not Authorized", "ACL restricts the record creation or update");
    }
    let params: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|query| url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let columns = WRITABLE.iter().find(|(name, _)| *name == table).map(|(_, columns)| *columns).unwrap_or_default();
    let body = if method == Method::POST || method == Method::PATCH || method == Method::PUT {
        let bytes = match request.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return failure(StatusCode::BAD_REQUEST, "unreadable body", ""),
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(fields)) => fields,
            _ => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "Exception while reading request",
                    "The payload is not valid JSON.",
                );
            }
        }
    } else {
        Map::new()
    };
    if method != Method::GET {
        simulator.writes.fetch_add(1, Ordering::Relaxed);
    }
    let stamp = crate::datetime::format(now());
    let mut written = simulator.written.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let records = written.entry(table.to_string()).or_default();
    // Every column the table has (empty when unset), none it lacks: what ServiceNow answers.
    let shown = |record: &Map<String, Value>| {
        let wanted: Option<Vec<String>> =
            param("sysparm_fields").map(|f| f.split(',').map(|f| f.trim().to_string()).collect());
        let system = ["sys_id", "sys_created_on", "sys_updated_on", "sys_mod_count"];
        let record: Map<String, Value> = columns
            .iter()
            .chain(&system)
            .filter(|name| wanted.as_ref().is_none_or(|wanted| wanted.iter().any(|w| w == *name)))
            .map(|name| (name.to_string(), record.get(*name).cloned().unwrap_or_else(|| Value::String(String::new()))))
            .collect();
        Value::Object(record)
    };
    let not_found = || {
        failure(StatusCode::NOT_FOUND, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
    };
    let kept = |fields: Map<String, Value>| -> Map<String, Value> {
        fields
            .into_iter()
            .filter(|(name, _)| columns.contains(&name.as_str()))
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (name, Value::String(text))
            })
            .collect()
    };
    match (method, sys_id) {
        (Method::GET, None) => {
            let query = match Query::parse(&param("sysparm_query").unwrap_or_default()) {
                Ok(query) => query,
                Err(error) => return failure(StatusCode::BAD_REQUEST, "Invalid query", &error),
            };
            let found: Vec<Value> = records
                .values()
                .filter(|record| query.matches(|name| record.get(name).and_then(Value::as_str).unwrap_or("")))
                .map(shown)
                .collect();
            let total = found.len();
            let mut response = respond(StatusCode::OK, json!({"result": found}));
            response.headers_mut().insert("x-total-count", HeaderValue::from(total));
            response
        }
        (Method::GET, Some(id)) => match records.get(id) {
            Some(record) => respond(StatusCode::OK, json!({"result": shown(record)})),
            None => not_found(),
        },
        (Method::POST, None) => {
            let id = simulator.write().rng.sys_id();
            let mut record = kept(body);
            for (name, value) in [
                ("sys_id", id.clone()),
                ("sys_created_on", stamp.clone()),
                ("sys_updated_on", stamp),
                ("sys_mod_count", "0".into()),
            ] {
                record.insert(name.into(), Value::String(value));
            }
            records.insert(id.clone(), record.clone());
            respond(StatusCode::CREATED, json!({"result": record}))
        }
        (Method::PATCH | Method::PUT, Some(id)) => {
            let Some(record) = records.get_mut(id) else { return not_found() };
            record.extend(kept(body));
            let count =
                record.get("sys_mod_count").and_then(Value::as_str).and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
            record.insert("sys_mod_count".into(), Value::String((count + 1).to_string()));
            record.insert("sys_updated_on".into(), Value::String(stamp));
            respond(StatusCode::OK, json!({"result": record.clone()}))
        }
        (Method::DELETE, Some(id)) => match records.remove(id) {
            Some(_) => {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            None => not_found(),
        },
        _ => failure(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", ""),
    }
}

impl Simulator {
    /// The records written to `table` through the Table API.
    pub fn written(&self, table: &str) -> Vec<Map<String, Value>> {
        let written = self.written.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        written.get(table).map(|records| records.values().cloned().collect()).unwrap_or_default()
    }

    /// Writes (POST, PATCH, DELETE) the Table API answered.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The account's password now.
    fn password(&self) -> String {
        let changed = self.changed_password.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        changed.unwrap_or_else(|| self.config.password.clone())
    }

    /// Changes the account's password, as an administrator would: the old one stops working.
    pub fn change_password(&self, password: &str) {
        *self.changed_password.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(password.to_string());
    }
}

fn authenticated<B>(simulator: &Simulator, request: &Request<B>) -> bool {
    let Some(authorization) = request.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    if let Some(encoded) = authorization.strip_prefix("Basic ") {
        let expected = format!("{}:{}", simulator.config.username, simulator.password());
        return base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .is_ok_and(|given| given == expected.as_bytes());
    }
    if let Some(token) = authorization.strip_prefix("Bearer ") {
        let tokens = simulator.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        return tokens.get(token.trim()).is_some_and(|expires| Instant::now() < *expires);
    }
    false
}

async fn oauth(simulator: &Simulator, request: Request<hyper::body::Incoming>) -> Response<Body> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return failure(StatusCode::BAD_REQUEST, "unreadable body", ""),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).unwrap_or("");
    let config = &simulator.config;
    let client_ok = field("client_id") == config.client_id && field("client_secret") == config.client_secret;
    let grant_ok = match field("grant_type") {
        "client_credentials" => true,
        "password" => field("username") == config.username && field("password") == simulator.password(),
        _ => {
            return respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials or password"}),
            );
        }
    };
    if !client_ok || !grant_ok {
        return respond(
            StatusCode::UNAUTHORIZED,
            json!({"error": "access_denied", "error_description": "access_denied: invalid client or user credentials"}),
        );
    }
    let token = {
        let mut state = simulator.write();
        format!("{}{}", state.rng.sys_id(), state.rng.sys_id())
    };
    let lifetime = config.token_lifetime;
    simulator
        .tokens
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(token.clone(), Instant::now() + lifetime);
    respond(
        StatusCode::OK,
        json!({
            "access_token": token,
            "refresh_token": "",
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs().max(1),
        }),
    )
}

impl Simulator {
    /// Revokes every OAuth token, as an administrator would (clients must fetch new ones).
    pub fn revoke_tokens(&self) {
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }

    /// OAuth tokens issued and still valid.
    pub fn live_tokens(&self) -> usize {
        let now = Instant::now();
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .filter(|expires| **expires > now)
            .count()
    }
}
