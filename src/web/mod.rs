//! The opening bench in a browser (移动查验终端): `twinspect web` serves the openings waiting, a
//! bag's image as a tile pyramid with every agency's marks, and the findings form, to tablets on
//! the site's LAN. axum on tokio; pages rendered on the server (maud), forms through htmx, no
//! front-end build step (the two scripts it serves are vendored in `assets/web`).
//!
//! Owns: the routes, the async side of the desk link (each command answered through a oneshot
//! when final), the refusal of bad requests (no session, a form without its CSRF token, a tile
//! outside the image). Every change goes through the desk's [`Command`]s on the desk's thread
//! ([`crate::desk::host`]): the same rules, records and audit as the two screens.
//!
//! Must not import: egui (the i18n words of `ui::i18n` are plain data); the archive's writer is
//! only handed to the desk's archiver at start, never written through here.

pub mod auth;
pub mod pages;
pub mod photos;
pub mod tiles;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::Markup;

use self::auth::{Lang, WebSession};
use crate::desk::host::{DeskLink, Request};
use crate::desk::{Command, Desk, DeskError, Done};
use crate::domain::inspection::{FoundItem, InspectionConfig};
use crate::domain::view::Preset;

/// Largest form body accepted (the findings form with notes in Chinese is a few kB).
pub const MAX_FORM: usize = 64 * 1024;
/// Bags looked through for openings waiting (newest first).
pub const OPENINGS_SCAN: usize = 500;

/// What the server shares between requests.
pub struct Web {
    pub desk: DeskLink,
    pub config: InspectionConfig,
    pub data: PathBuf,
    pub sessions: auth::Sessions,
    pub limiter: auth::Limiter,
    pub tiles: tiles::TileCache,
    /// Served over TLS (cookies Secure).
    pub secure: bool,
}

type Shared = Arc<Web>;

/// The routes.
pub fn router(web: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/openings") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{lang}", get(set_lang))
        .route("/openings", get(openings))
        .route("/bag", get(bag_by_query))
        .route("/bag/{id}", get(bag_page))
        .route("/bag/{id}/findings", post(findings))
        .route(
            "/bag/{id}/photos",
            post(photos::upload)
                .layer(axum::extract::DefaultBodyLimit::max(photos::MAX_PHOTO_BYTES + (64 << 10))),
        )
        .route("/bag/{id}/photo/{sha}", get(photos::get))
        .route("/bag/{id}/dzi/{file}", get(dzi))
        .route("/bag/{id}/dzi/{dir}/{level}/{tile}", get(tile))
        .route("/static/{file}", get(static_file))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(web)
}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // A response with a stricter policy of its own (a photo) keeps it.
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

impl Web {
    /// Apply a command at a station; the final answer (after its commit).
    pub async fn apply(&self, station: usize, cmd: Command) -> Result<Done, DeskError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.desk.send(Request::Apply { station, cmd, reply })?;
        rx.await.unwrap_or(Err(DeskError::NoArchive))
    }

    /// Read the desk on its thread.
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Desk) -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Box::new(move |d: &Desk| {
            let _ = tx.send(f(d));
        });
        self.desk.send(Request::Read(job)).ok()?;
        rx.await.ok()
    }

    async fn attach(&self, agency: &str) -> Result<usize, DeskError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.desk.send(Request::Attach { agency: agency.to_owned(), reply })?;
        rx.await.unwrap_or(Err(DeskError::NoArchive))
    }

    fn detach(&self, station: usize) {
        let _ = self.desk.send(Request::Detach { station });
    }

    /// End the sessions idle too long (their operators logged out, audited by the desk).
    pub fn expire(&self) {
        for s in self.sessions.expire(crate::unix_ms()) {
            self.detach(s.station);
        }
    }

    /// Whether the archive holds more of bag `id` (decisions, findings) than the desk's record
    /// under `key`: another writer of the archive (a hub node's copy of the decisions) added to
    /// it since it was opened, so it is read again.
    async fn newer_in_archive(&self, key: u64, id: i64) -> bool {
        let known = self.read(move |d| d.bag(key).map(|(_, r)| (r.decisions.len(), r.findings.len()))).await;
        let data = self.data.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let r = crate::files::store::Store::open_read(&data).and_then(|s| s.record(id)).ok()?;
            Some((r.decisions.len(), r.findings.len()))
        })
        .await;
        match (known, stored) {
            (Some(Some(k)), Ok(Some(s))) => s.0 > k.0 || s.1 > k.1,
            _ => false,
        }
    }

    /// The bag's desk key once it is open on this station (opened now unless it already is, or
    /// the archive holds more of it than the desk).
    async fn open(&self, s: &WebSession, id: i64) -> Result<u64, DeskError> {
        let station = s.station;
        let open = self.read(move |d| d.station(station).opened.as_ref().map(|o| (o.id, o.key))).await;
        if let Some(Some((oid, key))) = open
            && oid == id
            && !self.newer_in_archive(key, id).await
        {
            return Ok(key);
        }
        match self.apply(station, Command::Open { id }).await? {
            Done::Opened { key, .. } => Ok(key),
            other => Err(DeskError::CannotOpen(format!("unexpected answer {other:?}"))),
        }
    }
}

fn html(status: StatusCode, m: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.into_string()).into_response()
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The session, or the answer for a request without one.
fn session(web: &Web, headers: &HeaderMap) -> Result<WebSession, Response> {
    web.sessions.of(headers, crate::unix_ms()).ok_or_else(|| {
        if headers.contains_key("hx-request") {
            // htmx follows this to the login page instead of swapping it into the panel.
            (StatusCode::UNAUTHORIZED, [("hx-redirect", "/login")], "log in first").into_response()
        } else {
            to_login()
        }
    })
}

/// The form's CSRF token is this session's.
fn csrf_ok(s: &WebSession, form: &HashMap<String, String>) -> bool {
    form.get("csrf").is_some_and(|t| auth::same(t, &s.csrf))
}

fn forbidden(lang: Lang, s: Option<&WebSession>, why: &str) -> Response {
    html(StatusCode::FORBIDDEN, pages::problem(lang, s, why))
}

async fn login_page(State(web): State<Shared>, headers: HeaderMap) -> Response {
    if web.sessions.of(&headers, crate::unix_ms()).is_some() {
        return Redirect::to("/openings").into_response();
    }
    login_form(&web, Lang::of(&headers), StatusCode::OK, None)
}

fn login_form(web: &Web, lang: Lang, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = auth::token();
    let mut r = html(status, pages::login(lang, &web.config, &csrf, error));
    let c = auth::set_cookie(auth::LOGIN_COOKIE, &csrf, web.secure, Some(600));
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&c).expect("ascii"));
    r
}

fn client_ip(ci: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    ci.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

async fn login(
    State(web): State<Shared>,
    ci: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let now = crate::unix_ms();
    let ip = client_ip(ci.as_ref().map(|e| &e.0));
    let pre = auth::cookie(&headers, auth::LOGIN_COOKIE);
    if !pre.zip(form.get("csrf")).is_some_and(|(a, b)| auth::same(&a, b)) {
        return login_form(
            &web,
            lang,
            StatusCode::FORBIDDEN,
            Some(&lang.t("表单已过期，请重试", "The form expired: try again")),
        );
    }
    if !web.limiter.allows(ip, now) {
        tracing::warn!(%ip, "web login: too many failures from this address");
        let msg =
            lang.t("失败次数过多，请一分钟后再试", "Too many failed logins from this device: wait a minute");
        return login_form(&web, lang, StatusCode::TOO_MANY_REQUESTS, Some(&msg));
    }
    let (Some(id), Some(pin), Some(agency)) = (form.get("id"), form.get("pin"), form.get("agency")) else {
        return login_form(&web, lang, StatusCode::BAD_REQUEST, Some("id, PIN and agency are needed"));
    };
    let station = match web.attach(agency).await {
        Ok(s) => s,
        Err(e) => return login_form(&web, lang, StatusCode::BAD_REQUEST, Some(&e.to_string())),
    };
    match web.apply(station, Command::Login { id: id.clone(), pin: pin.clone() }).await {
        Ok(Done::LoggedIn(op)) => {
            let s = WebSession {
                token: auth::token(),
                csrf: auth::token(),
                operator: op.id.clone(),
                name: op.name.clone(),
                agency: agency.clone(),
                station,
                last_ms: now,
            };
            let cookie = auth::set_cookie(auth::SESSION_COOKIE, &s.token, web.secure, None);
            if !web.sessions.insert(s) {
                web.detach(station);
                let msg = lang.t("会话已满", "Too many sessions on this server");
                return login_form(&web, lang, StatusCode::SERVICE_UNAVAILABLE, Some(&msg));
            }
            tracing::info!(operator = %op.id, %agency, %ip, "web login");
            let mut r = Redirect::to("/openings").into_response();
            let h = r.headers_mut();
            h.append(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii"));
            let gone = auth::set_cookie(auth::LOGIN_COOKIE, "", web.secure, Some(0));
            h.append(header::SET_COOKIE, HeaderValue::from_str(&gone).expect("ascii"));
            r
        }
        other => {
            web.detach(station);
            let (status, msg) = match other {
                Err(DeskError::Login(crate::domain::operators::LoginError::LockedOut { remaining_secs })) => {
                    (
                        StatusCode::LOCKED,
                        lang.t(
                            &format!("密码错误次数过多，账户锁定 {remaining_secs} 秒"),
                            &format!("Too many wrong PINs: locked for {remaining_secs} s"),
                        ),
                    )
                }
                Err(e @ DeskError::WrongStation { .. }) => (StatusCode::FORBIDDEN, e.to_string()),
                Err(e) => (StatusCode::UNAUTHORIZED, e.to_string()),
                Ok(d) => (StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {d:?}")),
            };
            web.limiter.failed(ip, now);
            login_form(&web, lang, status, Some(&msg))
        }
    }
}

async fn logout(
    State(web): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = match session(&web, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &form) {
        return forbidden(Lang::of(&headers), Some(&s), "no valid form token");
    }
    web.sessions.remove(&s.token);
    // Logged out (and audited) by the desk before the answer; then the station is freed.
    let _ = web.apply(s.station, Command::Logout).await;
    web.detach(s.station);
    let mut r = Redirect::to("/login").into_response();
    let gone = auth::set_cookie(auth::SESSION_COOKIE, "", web.secure, Some(0));
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&gone).expect("ascii"));
    r
}

async fn set_lang(State(web): State<Shared>, Path(lang): Path<String>) -> Response {
    let Some(l) = Lang::parse(&lang) else { return StatusCode::NOT_FOUND.into_response() };
    let mut r = Redirect::to("/openings").into_response();
    let c = auth::set_cookie(auth::LANG_COOKIE, l.code(), web.secure, Some(365 * 86_400));
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&c).expect("ascii"));
    r
}

/// The bags whose opening is not closed, newest first, read from the archive.
pub fn waiting(data: &std::path::Path, cfg: &InspectionConfig) -> anyhow::Result<Vec<pages::Waiting>> {
    let store = crate::files::store::Store::open_read(data)?;
    let rows = store.bags(&crate::files::store::BagQuery { limit: OPENINGS_SCAN, ..Default::default() })?;
    let mut out = Vec::new();
    for row in rows {
        let record = store.record(row.id)?;
        if let Some(opening) = record.opening(cfg)
            && !opening.closed
        {
            out.push(pages::Waiting {
                id: row.id,
                hub: row.source.strip_prefix("hub://").map(str::to_owned),
                item_id: row.item_id,
                ended_ms: row.ended_ms,
                record,
                opening,
            });
        }
    }
    Ok(out)
}

async fn openings(State(web): State<Shared>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let s = match session(&web, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (data, cfg) = (web.data.clone(), web.config.clone());
    match tokio::task::spawn_blocking(move || waiting(&data, &cfg)).await {
        Ok(Ok(w)) => html(StatusCode::OK, pages::openings(lang, &web.config, &s, &w)),
        Ok(Err(e)) => {
            html(StatusCode::SERVICE_UNAVAILABLE, pages::problem(lang, Some(&s), &format!("archive: {e:#}")))
        }
        Err(e) => html(StatusCode::INTERNAL_SERVER_ERROR, pages::problem(lang, Some(&s), &e.to_string())),
    }
}

async fn bag_by_query(Query(q): Query<HashMap<String, String>>) -> Response {
    match q.get("id").map(|s| s.trim().trim_start_matches('#').parse::<i64>()) {
        Some(Ok(id)) if id > 0 => Redirect::to(&format!("/bag/{id}")).into_response(),
        _ => (StatusCode::BAD_REQUEST, "a bag number is needed").into_response(),
    }
}

fn preset_of(q: &HashMap<String, String>) -> Result<Preset, Response> {
    match q.get("fn") {
        None => Ok(Preset::Standard),
        Some(n) => Preset::ALL
            .into_iter()
            .find(|p| p.name() == n)
            .ok_or_else(|| (StatusCode::BAD_REQUEST, "no such image function").into_response()),
    }
}

fn desk_problem(lang: Lang, s: &WebSession, e: &DeskError) -> Response {
    let status = match e {
        DeskError::CannotOpen(m) if m.contains("no bag") || m.contains("not found") => StatusCode::NOT_FOUND,
        DeskError::NotLoggedIn => return to_login(),
        DeskError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    html(status, pages::problem(lang, Some(s), &e.to_string()))
}

async fn bag_page(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (s, f) = (session(&web, &headers)?, preset_of(&q)?);
    Ok(render_bag(&web, Lang::of(&headers), &s, id, f, StatusCode::OK, None).await)
}

async fn render_bag(
    web: &Web,
    lang: Lang,
    s: &WebSession,
    id: i64,
    f: Preset,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let key = match web.open(s, id).await {
        Ok(k) => k,
        Err(e) => return desk_problem(lang, s, &e),
    };
    let station = s.station;
    let got = web
        .read(move |d| {
            let scan =
                d.station(station).opened.as_ref().map(|o| (o.scan.frame.lines(), o.scan.frame.channels()));
            d.bag(key).map(|(_, r)| r.clone()).zip(scan)
        })
        .await
        .flatten();
    let Some((record, (lines, channels))) = got else {
        return desk_problem(lang, s, &DeskError::CannotOpen("the bag left the desk".into()));
    };
    let item = record.item_id.clone();
    let v = pages::BagView {
        id,
        width: lines,
        height: channels,
        record: &record,
        item_id: item.as_deref(),
        function: f,
    };
    html(status, pages::bag(lang, &web.config, s, &v, message))
}

/// The findings form's items: rows with a category chosen (none: nothing found).
fn found_items(form: &HashMap<String, String>) -> Result<Vec<FoundItem>, String> {
    let mut items = Vec::new();
    for i in 0..pages::MAX_ROWS {
        let cat = form.get(&format!("cat{i}")).map(|c| c.trim()).unwrap_or("");
        if cat.is_empty() {
            continue;
        }
        let count = form.get(&format!("count{i}")).map(|c| c.trim()).unwrap_or("1");
        let count: u32 = count.parse().map_err(|_| format!("{count:?} is not a count"))?;
        let note = form.get(&format!("note{i}")).cloned().unwrap_or_default();
        items.push(FoundItem { category: cat.to_owned(), count, note: note.trim().to_owned() });
    }
    Ok(items)
}

async fn findings(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let s = match session(&web, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &form) {
        tracing::warn!(operator = %s.operator, bag = id, "web findings without a valid form token: refused");
        return forbidden(lang, Some(&s), "no valid form token");
    }
    let htmx = headers.contains_key("hx-request");
    let outcome = match found_items(&form) {
        Err(e) => Err((StatusCode::UNPROCESSABLE_ENTITY, e)),
        Ok(items) => {
            let treatment = form.get("treatment").cloned().filter(|t| !t.trim().is_empty());
            match web.open(&s, id).await {
                Err(e) => Err((StatusCode::NOT_FOUND, e.to_string())),
                Ok(key) => match web.apply(s.station, Command::Findings { bag: key, items, treatment }).await
                {
                    Ok(_) => Ok(()),
                    Err(DeskError::NotLoggedIn) => return to_login(),
                    Err(e @ DeskError::Inspection(_)) => Err((StatusCode::FORBIDDEN, e.to_string())),
                    Err(e) => Err((StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
                },
            }
        }
    };
    let ok = lang.t("已记录", "Recorded");
    answer_change(&web, lang, &s, id, htmx, outcome.map(|_| ok)).await
}

/// The answer to a form that changed bag `id`'s opening: the opening panel as it now stands
/// (htmx), or the bag's page (a redirect once done, the page with the problem if not).
async fn answer_change(
    web: &Web,
    lang: Lang,
    s: &WebSession,
    id: i64,
    htmx: bool,
    outcome: Result<String, (StatusCode, String)>,
) -> Response {
    let (status, message) = match &outcome {
        Ok(m) => (StatusCode::OK, m.clone()),
        Err((st, m)) => (*st, m.clone()),
    };
    if outcome.is_ok() && !htmx {
        return Redirect::to(&format!("/bag/{id}")).into_response();
    }
    if !htmx {
        return render_bag(web, lang, s, id, Preset::Standard, status, Some(&message)).await;
    }
    // htmx: only the opening panel, as it now stands.
    let key = match web.open(s, id).await {
        Ok(k) => k,
        Err(e) => return desk_problem(lang, s, &e),
    };
    let record = web.read(move |d| d.bag(key).map(|(_, r)| r.clone())).await.flatten().unwrap_or_default();
    html(status, pages::opening_panel(lang, &web.config, s, id, &record, Some(&message)))
}

async fn dzi(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path((id, file)): Path<(i64, String)>,
) -> Response {
    if let Err(r) = session(&web, &headers) {
        return r;
    }
    let Some(f) = file.strip_suffix(".dzi").and_then(|n| Preset::ALL.into_iter().find(|p| p.name() == n))
    else {
        return (StatusCode::NOT_FOUND, "no such image").into_response();
    };
    match web.tiles.pyramid(id, f).await {
        Ok(p) => ([(header::CONTENT_TYPE, "application/xml")], p.dzi()).into_response(),
        Err(e) => tile_problem(&e),
    }
}

fn tile_problem(e: &tiles::TileError) -> Response {
    let status = match e {
        tiles::TileError::NoLevel(..) | tiles::TileError::Outside(..) | tiles::TileError::NoBag(_) => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string()).into_response()
}

/// `{fn}_files/{level}/{col}_{row}.png`.
fn parse_tile(dir: &str, level: &str, tile: &str) -> Option<(Preset, usize, usize, usize)> {
    let f = dir.strip_suffix("_files").and_then(|n| Preset::ALL.into_iter().find(|p| p.name() == n))?;
    let level: usize = level.parse().ok().filter(|l| *l < 64)?;
    let (c, r) = tile.strip_suffix(".png")?.split_once('_')?;
    Some((f, level, c.parse().ok()?, r.parse().ok()?))
}

async fn tile(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path((id, dir, level, tile)): Path<(i64, String, String, String)>,
) -> Response {
    if let Err(r) = session(&web, &headers) {
        return r;
    }
    let Some((f, level, col, row)) = parse_tile(&dir, &level, &tile) else {
        return (StatusCode::BAD_REQUEST, "not a tile").into_response();
    };
    let p = match web.tiles.pyramid(id, f).await {
        Ok(p) => p,
        Err(e) => return tile_problem(&e),
    };
    // A tile encoded before is served at once; else encoded off the async threads.
    let png = match p.cached_png(level, col, row) {
        Some(b) => Ok(Ok(b)),
        None => tokio::task::spawn_blocking(move || p.png(level, col, row)).await,
    };
    match png {
        Ok(Ok(png)) => {
            ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=300")], png)
                .into_response()
        }
        Ok(Err(e)) => tile_problem(&e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The vendored scripts and the style sheet (`assets/web`, sources named in its README).
const STATIC: &[(&str, &str, &[u8])] = &[
    ("htmx.min.js", "text/javascript", include_bytes!("../../assets/web/htmx.min.js")),
    ("openseadragon.min.js", "text/javascript", include_bytes!("../../assets/web/openseadragon.min.js")),
    ("bag.js", "text/javascript", include_bytes!("../../assets/web/bag.js")),
    ("style.css", "text/css", include_bytes!("../../assets/web/style.css")),
    ("icon.svg", "image/svg+xml", include_bytes!("../../assets/web/icon.svg")),
];

async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC.iter().find(|(n, _, _)| *n == file) {
        Some((_, mime, body)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=3600")], *body)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// How to start the server.
pub struct Options {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub profile: crate::domain::profile::ScannerProfile,
    pub config: InspectionConfig,
    /// Render on the CPU even where there is a GPU.
    pub cpu: bool,
    /// HTTPS: the certificate chain and its private key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A desk of its own over the archive in `data` (its writer) with these accounts (`demo`: the
/// demonstration ones, shown as such), on its own thread, and the shared state.
pub fn start(
    o: &Options,
    operators: crate::domain::operators::OperatorStore,
    demo: bool,
) -> anyhow::Result<(Shared, std::thread::JoinHandle<Desk>)> {
    let store = crate::files::store::Store::open(&o.data).map_err(|e| anyhow::anyhow!("{e}"))?;
    start_over(o, store, operators, demo)
}

/// [`start`] over the archive's writer `store`, which the caller opened (and may hold further
/// writers of: the hub's opening bench brings bags in beside the desk).
pub fn start_over(
    o: &Options,
    store: crate::files::store::Store,
    operators: crate::domain::operators::OperatorStore,
    demo: bool,
) -> anyhow::Result<(Shared, std::thread::JoinHandle<Desk>)> {
    let mut desk = Desk::new(o.config.clone(), operators, demo);
    let mut a =
        crate::desk::archiver::Archiver::over(store, "web", &o.profile.name, o.profile.channels as usize)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    a.log("system", "web.start", serde_json::json!({ "listen": o.listen.to_string() }));
    desk.archive = Some(a);
    let (link, h) = crate::desk::host::spawn(desk);
    Ok((shared(o, link), h))
}

/// The server's state over a desk reached through `link` (the accounts are the desk's).
pub fn shared(o: &Options, link: DeskLink) -> Shared {
    let renderer = tiles::Renderer::new(o.profile.clone(), o.cpu);
    Arc::new(Web {
        desk: link,
        config: o.config.clone(),
        data: o.data.clone(),
        sessions: Default::default(),
        limiter: Default::default(),
        tiles: tiles::TileCache::new(o.data.clone(), renderer),
        secure: o.tls.is_some(),
    })
}

/// The site's certificate and key as rustls serves them (ring's cryptography; HTTP/1.1).
pub fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<rustls::ServerConfig> {
    use anyhow::Context;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("TLS certificate {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "TLS certificate {}: no certificate in it", cert.display());
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("TLS key {}", key.display()))?;
    // ring: no aws-lc build (cmake, minutes on two cores); it lacks only the post-quantum key
    // exchange, which tablets' browsers fall back from.
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(c)
}

/// Serve a desk of its own (see [`start`]) until Ctrl-C (or SIGTERM); `ready` hears the address
/// bound (port 0: the one chosen).
pub fn serve(
    o: Options,
    operators: crate::domain::operators::OperatorStore,
    demo: bool,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let store = crate::files::store::Store::open(&o.data).map_err(|e| anyhow::anyhow!("{e}"))?;
    serve_over(o, store, operators, demo, ready)
}

/// [`serve`] over the archive's writer `store`, which the caller opened.
pub fn serve_over(
    o: Options,
    store: crate::files::store::Store,
    operators: crate::domain::operators::OperatorStore,
    demo: bool,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let tls = tls_of(&o)?;
    let (web, desk) = start_over(&o, store, operators, demo)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        // Signals taken over before the address is said: whoever reads it may stop the server
        // at once (a lazily polled handler left a window where SIGTERM killed it unsaid).
        let stop = shutdown()?;
        listen(web, o.listen, tls, ready, stop).await
    })?;
    drop(rt);
    let _ = desk.join();
    Ok(())
}

/// The server beside a workstation (`run --web`): its desk is the workstation's, reached through
/// `link` and served by the window's frame loop. The server runs on a thread of its own until
/// the returned handle is stopped or dropped (signals stay the window's).
pub fn beside(o: &Options, link: DeskLink, ready: impl FnOnce(SocketAddr)) -> anyhow::Result<Beside> {
    let tls = tls_of(o)?;
    let web = shared(o, link);
    // Bound here, so a port in use is said before any window opens.
    let listener =
        std::net::TcpListener::bind(o.listen).map_err(|e| anyhow::anyhow!("--web {}: {e}", o.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("web".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        rt.block_on(serve_on(web, listener, tls, async move {
            let _ = stopped.await;
        }))
    })?;
    ready(addr);
    Ok(Beside { stop: Some(stop), thread: Some(thread) })
}

/// A web server running beside a workstation.
pub struct Beside {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Beside {
    /// Stop serving (requests under way finish, five seconds at most) and say why it ended if
    /// it ended on its own.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.end()
    }

    fn end(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let Some(t) = self.thread.take() else { return Ok(()) };
        // A tablet that keeps a request open does not hold the workstation's exit: six seconds,
        // then the server is left to end with the process.
        let t0 = std::time::Instant::now();
        while !t.is_finished() {
            if t0.elapsed() > std::time::Duration::from_secs(6) {
                tracing::warn!("the opening bench still had requests open when the workstation closed");
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        t.join().map_err(|_| anyhow::anyhow!("the web server panicked"))?
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

fn tls_of(o: &Options) -> anyhow::Result<Option<rustls::ServerConfig>> {
    let tls = match &o.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    if tls.is_none() && !o.listen.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on {}: PINs and images cross the network unencrypted; configure TLS or keep it on loopback",
            o.listen
        );
        eprintln!(
            "warning: plain HTTP on {} beyond loopback: PINs and bag images travel unencrypted (--tls-cert, --tls-key)",
            o.listen
        );
    }
    Ok(tls)
}

async fn listen(
    web: Shared,
    addr: SocketAddr,
    tls: Option<rustls::ServerConfig>,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    ready(listener.local_addr()?);
    serve_on(web, listener, tls, stop).await
}

/// Serve on `listener` until `stop` completes.
async fn serve_on(
    web: Shared,
    listener: std::net::TcpListener,
    tls: Option<rustls::ServerConfig>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sweeper = web.clone();
    let sweeping = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            sweeper.expire();
        }
    });
    let app = router(web).into_make_service_with_connect_info::<SocketAddr>();
    let r = match tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app).with_graceful_shutdown(stop).await.map_err(anyhow::Error::from)
        }
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(tls));
            let handle = axum_server::Handle::<SocketAddr>::new();
            let h = handle.clone();
            tokio::spawn(async move {
                stop.await;
                h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
            });
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app)
                .await
                .map_err(anyhow::Error::from)
        }
    };
    sweeping.abort();
    r
}

/// SIGTERM or SIGINT, their handlers installed now (on the current runtime), awaited later.
fn shutdown() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
