//! The opening bench's web server over HTTP (its router in process, every request a real HTTP
//! request through axum): log in and out, lockout and the per-address limit, CSRF on every form,
//! the openings waiting, a bag's page with every agency's marks, tiles of the pyramid (and the
//! refusal of tiles outside the image or at absurd levels), findings recorded through the desk
//! with the cross-agency check on the server, and the opening closing when the second agency
//! records; the archive and its audit trail checked afterwards.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use twinspect::domain::inspection::InspectionConfig;
use twinspect::files::store::Store;

struct Server {
    app: axum::Router,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _desk: std::thread::JoinHandle<twinspect::desk::Desk>,
}

/// An archive of two captured bags: customs asked to open bag 1 (with a reason) and marked a
/// knife on it; quarantine released it. Bag 2 was released by both.
fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 8, 2);
    let mut r = common::Recorder::open(&data);
    r.decide(1, "customs", "open", 1000, None);
    r.mark(1, "customs", [100.0, 300.0, 300.0, 500.0], "blade 刀", 2000);
    r.decide(1, "quarantine", "release", 3000, None);
    r.decide(2, "customs", "release", 4000, None);
    r.decide(2, "quarantine", "release", 4000, None);
    let cfg = r.cfg.clone();
    drop(r); // the writer's lock, for the server
    let opts = twinspect::web::Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        data: data.clone(),
        profile: twinspect::domain::profile::ScannerProfile::load("desk-140").unwrap(),
        config: cfg,
        cpu: true,
        tls: None,
    };
    let (web, desk) = twinspect::web::start(&opts, twinspect::desk::Desk::demo_operators(), true).unwrap();
    let app = twinspect::web::router(web);
    Server { app, data, _dir: dir, _desk: desk }
}

/// One browser: its cookies, its address.
struct Browser<'a> {
    s: &'a Server,
    cookies: HashMap<String, String>,
    ip: [u8; 4],
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map_or("", |v| v.to_str().unwrap())
    }
}

impl<'a> Browser<'a> {
    fn new(s: &'a Server) -> Self {
        Browser { s, cookies: HashMap::new(), ip: [10, 0, 0, 9] }
    }

    async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Answer {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut req = req.header(header::COOKIE, cookie.join("; ")).body(body).unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::from((self.ip, 40000))));
        let r = self.s.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        for c in parts.headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        Answer { status: parts.status, headers: parts.headers, body }
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(Request::get(path), Body::empty()).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded(form);
        let req = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req, Body::from(body)).await
    }

    /// A multipart form (what a browser sends with a file): `csrf` if given, then `photo`.
    async fn upload(
        &mut self,
        path: &str,
        csrf: Option<&str>,
        file: &str,
        type_: &str,
        bytes: &[u8],
    ) -> Answer {
        let b = "----twinspect-boundary-7d1f";
        let mut body = Vec::new();
        if let Some(c) = csrf {
            body.extend(
                format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{c}\r\n").bytes(),
            );
        }
        body.extend(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{file}\"\r\nContent-Type: {type_}\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(format!("\r\n--{b}--\r\n").bytes());
        let req =
            Request::post(path).header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"));
        self.send(req, Body::from(body)).await
    }

    /// The login form's token, then log in.
    async fn login(&mut self, id: &str, pin: &str, agency: &str) -> Answer {
        let page = self.get("/login").await;
        let csrf = hidden(&page.text(), "csrf");
        self.post("/login", &[("csrf", &csrf), ("id", id), ("pin", pin), ("agency", agency)]).await
    }

    /// This session's form token, from a page that carries it.
    async fn csrf(&mut self) -> String {
        hidden(&self.get("/openings").await.text(), "csrf")
    }
}

fn form_urlencoded(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// The value of the hidden input `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_a_wrong_pin_locks_the_account_and_limits_the_address() {
    let s = server();
    let mut b = Browser::new(&s);
    // Without a session every page leads to the login.
    let r = b.get("/openings").await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"));
    let r = b.get("/bag/1/dzi/standard.dzi").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "no tile without a session");

    // A login without the form's token is refused before the PIN is even tried.
    let r = b.post("/login", &[("id", "c001"), ("pin", "1111"), ("agency", "customs")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    for _ in 0..4 {
        let r = b.login("c001", "9999", "customs").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert!(r.text().contains("wrong operator id or PIN"));
    }
    let r = b.login("c001", "9999", "customs").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Five wrong PINs: the account is locked, the right PIN too is refused.
    let r = b.login("c001", "1111", "customs").await;
    assert_eq!(r.status, StatusCode::LOCKED, "{}", r.text());
    assert!(r.text().contains("locked for"));
    assert!(!b.cookies.contains_key("twinspect_session"));

    // Another address: ten failures (on other accounts), then it is turned away for a minute.
    let mut m = Browser::new(&s);
    m.ip = [10, 0, 0, 77];
    for i in 0..10 {
        let r = m.login(&format!("x{i:03}"), "1234", "customs").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = m.login("q001", "2222", "quarantine").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    // A third address is not affected; an operator at the wrong agency is refused.
    let mut q = Browser::new(&s);
    q.ip = [10, 0, 0, 78];
    let r = q.login("q001", "2222", "customs").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = q.login("q001", "2222", "quarantine").await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/openings"), "{}", r.text());
    let cookie =
        r.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>();
    let session = cookie.iter().find(|c| c.starts_with("twinspect_session=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");

    // Logging out needs the form token; then the session is gone.
    let r = q.post("/logout", &[("csrf", "forged")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let csrf = q.csrf().await;
    let r = q.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"));
    assert_eq!(q.get("/openings").await.status, StatusCode::SEE_OTHER);

    // Every refusal and the login and logout are in the audit trail (written by the archive's
    // own thread, moments later), which verifies.
    let store = Store::open_read(&s.data).unwrap();
    let actions = || -> Vec<(String, String)> {
        store
            .connection()
            .prepare("SELECT actor, action FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let t0 = std::time::Instant::now();
    while !actions().iter().any(|(a, b)| a == "q001" && b == "logout") && t0.elapsed().as_secs() < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let actions = actions();
    let report = store.verify_audit().unwrap();
    assert!(report.ok(), "{report:?}");
    let count = |who: &str, what: &str| actions.iter().filter(|(a, b)| a == who && b == what).count();
    assert_eq!(count("c001", "login.refused"), 6, "{actions:?}");
    assert_eq!(count("q001", "login"), 1, "{actions:?}");
    assert_eq!(count("q001", "logout"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_is_recorded_by_each_agency_from_the_browser_and_closes() {
    let s = server();
    let mut c = Browser::new(&s);
    let r = c.login("c001", "1111", "customs").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    for h in ["x-content-type-options", "x-frame-options", "content-security-policy"] {
        assert!(r.headers.contains_key(h), "{h} missing");
    }

    // The openings: bag 1 (customs asked), not bag 2 (released by both).
    let page = c.get("/openings").await;
    assert_eq!(page.status, StatusCode::OK);
    let t = page.text();
    assert!(t.contains("href=\"/bag/1\""), "{t}");
    assert!(!t.contains("href=\"/bag/2\""), "{t}");

    // The bag: its image's size, customs' mark drawn (escaped note), the findings form.
    let page = c.get("/bag/1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let t = page.text();
    let lines = s_lines(&s.data, 1);
    assert!(t.contains(&format!("data-width=\"{lines}\"")), "{t}");
    assert!(t.contains("<g data-agency=\"customs\""), "{t}");
    assert!(t.contains("<rect") && t.contains("blade 刀"), "the mark with its note");
    assert!(t.contains("action=\"/bag/1/findings\""));
    assert_eq!(c.get("/bag/99").await.status, StatusCode::NOT_FOUND);

    // Tiles: the descriptor, the whole image at the top level in 256-pixel tiles, one deeper tile.
    let dzi = c.get("/bag/1/dzi/standard.dzi").await;
    assert_eq!(dzi.status, StatusCode::OK);
    let (w, h) = size_of(&dzi.text());
    assert_eq!(w, lines);
    let max = (w.max(h) as f64).log2().ceil() as usize;
    let tile = c.get(&format!("/bag/1/dzi/standard_files/{max}/0_0.png")).await;
    assert_eq!(tile.status, StatusCode::OK);
    assert_eq!(tile.headers[header::CONTENT_TYPE], "image/png");
    let img = image::load_from_memory(&tile.body).unwrap();
    assert_eq!((img.width() as usize, img.height() as usize), (w.min(256), h.min(256)));
    let low = c.get(&format!("/bag/1/dzi/standard_files/{}/0_0.png", max - 2)).await;
    let low = image::load_from_memory(&low.body).unwrap();
    assert_eq!(low.width() as usize, w.div_ceil(4).min(256));
    // The same pixels as the whole image rendered by `render`'s CPU twin would give is the
    // pipeline's own test; here: not blank.
    let px = img.to_rgba8();
    assert!(px.pixels().any(|p| p.0 != px.get_pixel(0, 0).0), "a tile with an image in it");
    // Refusals: outside the image, an absurd level, garbage, an unknown function.
    let cols = w.div_ceil(256);
    assert_eq!(
        c.get(&format!("/bag/1/dzi/standard_files/{max}/{cols}_0.png")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(&format!("/bag/1/dzi/standard_files/{}/0_0.png", max + 1)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(c.get("/bag/1/dzi/standard_files/99999999999/0_0.png").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.get("/bag/1/dzi/standard_files/3/0_-1.png").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.get("/bag/1/dzi/nonsense.dzi").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/bag/1/dzi/standard_files/3/x.png").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.get("/bag/999/dzi/standard.dzi").await.status, StatusCode::NOT_FOUND);

    let csrf = hidden(&t, "csrf");
    let knives = InspectionConfig::default().agencies[0].categories[0].id.clone();
    let fruit = InspectionConfig::default().agencies[1].categories[0].id.clone();
    // A findings form without its token, or with another session's: refused, nothing recorded.
    let r = c.post("/bag/1/findings", &[("cat0", &knives), ("count0", "1")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        c.post("/bag/1/findings", &[("csrf", "0123456789abcdef0123456789abcdef"), ("cat0", &knives)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Customs cannot record a quarantine category (the server checks, whatever the form says).
    let r = c.post("/bag/1/findings", &[("csrf", &csrf), ("cat0", &fruit), ("count0", "2")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = c.post("/bag/1/findings", &[("csrf", &csrf), ("cat0", &knives), ("count0", "-3")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(Store::open_read(&s.data).unwrap().record(1).unwrap().findings.is_empty());

    // Customs records a knife (through htmx: only the panel comes back).
    let req = Request::post("/bag/1/findings")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("hx-request", "true");
    let body =
        form_urlencoded(&[("csrf", &csrf), ("cat0", &knives), ("count0", "1"), ("note0", "菜刀 cleaver")]);
    let r = c.send(req, Body::from(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = r.text();
    assert!(t.starts_with("<section id=\"opening\""), "{t}");
    assert!(t.contains("菜刀 cleaver") && !t.contains("<html"));
    let rec = Store::open_read(&s.data).unwrap().record(1).unwrap();
    assert_eq!(rec.findings.len(), 1);
    assert_eq!((rec.findings[0].agency.as_str(), rec.findings[0].operator.as_str()), ("customs", "c001"));
    // Still waiting for quarantine.
    assert!(c.get("/openings").await.text().contains("href=\"/bag/1\""));

    // Quarantine, on another tablet, records nothing found: the opening closes.
    let mut q = Browser::new(&s);
    q.ip = [10, 0, 0, 12];
    assert_eq!(q.login("q001", "2222", "quarantine").await.status, StatusCode::SEE_OTHER);
    let page = q.get("/bag/1").await.text();
    let qcsrf = hidden(&page, "csrf");
    assert_ne!(qcsrf, csrf, "each session its own token");
    let r = q.post("/bag/1/findings", &[("csrf", &qcsrf), ("treatment", "none needed")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/bag/1"), "{}", r.text());
    let page = q.get("/bag/1").await.text();
    assert!(page.contains("Closed: every agency has recorded its findings"), "{page}");
    assert!(!q.get("/openings").await.text().contains("href=\"/bag/1\""));
    let store = Store::open_read(&s.data).unwrap();
    let rec = store.record(1).unwrap();
    let cfg = InspectionConfig::default();
    assert!(rec.opening(&cfg).unwrap().closed);
    assert_eq!(rec.findings_of("quarantine").unwrap().treatment.as_deref(), Some("none needed"));
    assert!(store.verify_audit().unwrap().ok());
}

/// Lines of archived bag `id`.
fn s_lines(data: &std::path::Path, id: i64) -> usize {
    Store::open_read(data).unwrap().bag(id).unwrap().lines.unwrap()
}

fn size_of(dzi: &str) -> (usize, usize) {
    let num = |k: &str| {
        let at = dzi.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
        dzi[at..at + dzi[at..].find('"').unwrap()].parse().unwrap()
    };
    (num("Width"), num("Height"))
}

/// A JPEG as a tablet's camera would send (small), distinct per `seed`.
fn jpeg(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8 ^ seed, y as u8, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_from_the_tablet_are_checked_kept_with_the_bag_and_served_only_as_images() {
    let s = server();
    let mut c = Browser::new(&s);
    assert_eq!(c.login("c001", "1111", "customs").await.status, StatusCode::SEE_OTHER);
    let page = c.get("/bag/1").await.text();
    assert!(page.contains("action=\"/bag/1/photos\""), "the photo form on an opening: {page}");
    let csrf = hidden(&page, "csrf");
    let photo = jpeg(1);

    // Refused: no token; text named .jpg; an HTML page sent as an image; a truncated PNG; too
    // big for the route; a bag nobody asked to open. Nothing kept.
    let r = c.upload("/bag/1/photos", None, "p.jpg", "image/jpeg", &photo).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c.upload("/bag/1/photos", Some(&csrf), "p.jpg", "image/jpeg", b"just some text").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    let html = b"<html><body><script>alert(document.cookie)</script></body></html>";
    let r = c.upload("/bag/1/photos", Some(&csrf), "p.png", "image/png", html).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // (A JPEG cut short may still decode, grey where it stops; a PNG's checksums catch it.)
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(64, 64, image::Rgb([9, 9, 9]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    let r = c.upload("/bag/1/photos", Some(&csrf), "p.png", "image/png", &png[..png.len() / 2]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let big = vec![0u8; twinspect::web::photos::MAX_PHOTO_BYTES + (100 << 10)];
    let r = c.upload("/bag/1/photos", Some(&csrf), "big.jpg", "image/jpeg", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = c.upload("/bag/2/photos", Some(&csrf), "p.jpg", "image/jpeg", &photo).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "bag 2 has no opening: {}", r.text());
    assert!(Store::open_read(&s.data).unwrap().record(1).unwrap().photos.is_empty());

    // Kept: sent as "application/octet-stream" (some tablets do), it is what its bytes are.
    let r = c.upload("/bag/1/photos", Some(&csrf), "IMG_0001.JPG", "application/octet-stream", &photo).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/bag/1"), "{}", r.text());
    // The same photo again (a retry): still one.
    let r = c.upload("/bag/1/photos", Some(&csrf), "IMG_0001.JPG", "image/jpeg", &photo).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let rec = Store::open_read(&s.data).unwrap().record(1).unwrap();
    assert_eq!(rec.photos.len(), 1);
    let p = &rec.photos[0];
    assert_eq!((p.agency.as_str(), p.operator.as_str(), p.mime.as_str()), ("customs", "c001", "image/jpeg"));
    assert_eq!((p.width, p.height, p.size), (320, 240, photo.len() as u64));

    // Quarantine's officer sees it on the bag and fetches it: the same bytes, as a JPEG, under a
    // policy that runs nothing.
    let mut q = Browser::new(&s);
    q.ip = [10, 0, 0, 12];
    assert_eq!(q.login("q001", "2222", "quarantine").await.status, StatusCode::SEE_OTHER);
    let url = format!("/bag/1/photo/{}", p.sha256);
    assert!(q.get("/bag/1").await.text().contains(&format!("src=\"{url}\"")));
    let got = q.get(&url).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, photo);
    assert_eq!(got.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(got.headers[header::CONTENT_SECURITY_POLICY], "default-src 'none'; sandbox");
    assert_eq!(got.headers["x-content-type-options"], "nosniff");
    // Not for a browser without a session; no such photo; a name that is not a SHA-256.
    assert_eq!(Browser::new(&s).get(&url).await.status, StatusCode::SEE_OTHER);
    assert_eq!(q.get(&format!("/bag/2/photo/{}", p.sha256)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(q.get("/bag/1/photo/..%2F..%2Fetc%2Fpasswd").await.status, StatusCode::BAD_REQUEST);

    // Quarantine adds one of its own through htmx: the panel comes back with both photos.
    let qcsrf = hidden(&q.get("/bag/1").await.text(), "csrf");
    let b = "xyzboundary";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{qcsrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"q.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend(jpeg(2));
    body.extend(format!("\r\n--{b}--\r\n").bytes());
    let req = Request::post("/bag/1/photos")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
        .header("hx-request", "true");
    let r = q.send(req, Body::from(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().starts_with("<section id=\"opening\""));
    assert_eq!(r.text().matches("<img src=\"/bag/1/photo/").count(), 2, "{}", r.text());

    let store = Store::open_read(&s.data).unwrap();
    let rec = store.record(1).unwrap();
    assert_eq!(rec.photos.iter().map(|p| p.agency.as_str()).collect::<Vec<_>>(), ["customs", "quarantine"]);
    let audited = twinspect::files::store::audit::entries(store.connection())
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "photo")
        .count();
    assert_eq!(audited, 2, "each photo audited once");
    assert!(store.verify_audit().unwrap().ok());
}

/// `twinspect web` with the site's certificate: HTTPS only on its port, cookies marked Secure,
/// no warning about plain HTTP; a certificate that is not there, or a key that is not its
/// own, refused at start naming the file. curl is the client, trusting only that certificate.
#[test]
fn with_a_certificate_it_serves_https_only_and_marks_cookies_secure() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 8, 1);
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let make = |cert: &std::path::Path, key: &std::path::Path| {
        let o = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
            ])
            .args(["-subj", "/CN=twinspect-test", "-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(cert)
            .output()
            .expect("openssl (apt install openssl; .ci/test does)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    make(&cert, &key);
    let web = |cert: &std::path::Path, key: &std::path::Path| {
        let mut c = common::twinspect();
        c.args(["web", "--cpu", "--listen", "127.0.0.1:0", "--data"]).arg(&data);
        c.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        c
    };

    // Refused at start: no such certificate; another certificate's key.
    let (ok, _, err) = common::run(&mut web(&dir.path().join("none.pem"), &key));
    assert!(!ok && err.contains("none.pem"), "{err}");
    let (other_cert, other_key) = (dir.path().join("o-cert.pem"), dir.path().join("o-key.pem"));
    make(&other_cert, &other_key);
    let (ok, _, err) = common::run(&mut web(&cert, &other_key));
    assert!(!ok && err.contains("do not go together"), "{err}");

    let mut server = web(&cert, &key).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{first:?}")).to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let curl = |args: &[&str]| {
        let o =
            Command::new("curl").args(["-s", "-S", "--max-time", "10"]).args(args).output().expect("curl");
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let cacert = cert.to_str().unwrap();
    let (ok, head) = curl(&["--cacert", cacert, "-D", "-", "-o", "/dev/null", &format!("{url}login")]);
    assert!(ok, "{head}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let cookie = head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap_or("");
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    // Without trusting the certificate, curl refuses it; plain HTTP on the same port gets no page.
    assert!(!curl(&["-o", "/dev/null", &format!("{url}login")]).0);
    let plain = url.replacen("https://", "http://", 1);
    let (_, body) = curl(&["-o", "-", &format!("{plain}login")]);
    assert!(!body.contains("<form"), "{body}");

    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "stops cleanly on SIGTERM: {:?}", out.status);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("plain HTTP"), "{err}");
}
