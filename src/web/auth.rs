//! Who is at the browser: sessions (a random token in an HttpOnly, SameSite=Strict cookie,
//! Secure under TLS), each with its own CSRF token that every form carries back, the idle
//! expiry, and the login rate limit per client address (on top of the accounts' own lockout).
//!
//! Owns: tokens, cookies, the session table, the limiter. Must not import: egui, wgpu, the
//! desk's internals (a session only names its station).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::HeaderMap;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "twinspect_session";
/// The login form's own CSRF cookie (before there is a session).
pub const LOGIN_COOKIE: &str = "twinspect_login";
/// The language cookie.
pub const LANG_COOKIE: &str = "twinspect_lang";
/// A session unused this long is over (its operator logged out, audited).
pub const IDLE_MS: u64 = 30 * 60_000;
/// Failed logins from one address within [`WINDOW_MS`] before it is turned away (429).
pub const MAX_FAILURES: usize = 10;
pub const WINDOW_MS: u64 = 60_000;
/// Sessions at most (a tablet per officer at a few benches; beyond it a login is refused).
pub const MAX_SESSIONS: usize = 256;

/// The language of the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    Zh,
    En,
    #[default]
    Both,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            "both" => Some(Lang::Both),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
            Lang::Both => "both",
        }
    }

    /// Words in this language ("中文 English" for both).
    pub fn t(self, zh: &str, en: &str) -> String {
        match self {
            Lang::Zh => zh.to_owned(),
            Lang::En => en.to_owned(),
            Lang::Both => format!("{zh} {en}"),
        }
    }

    pub fn of(headers: &HeaderMap) -> Lang {
        cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)).unwrap_or_default()
    }
}

/// A logged-in operator at a browser.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub token: String,
    pub csrf: String,
    pub operator: String,
    pub name: String,
    pub agency: String,
    /// The desk's station this session drives.
    pub station: usize,
    pub last_ms: u64,
}

/// 128 random bits, hex.
pub fn token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal without leaking where they differ through timing.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A Set-Cookie value: HttpOnly, SameSite=Strict, Path=/, Secure when served over TLS;
/// `max_age` 0 removes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

/// The session table.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, WebSession>>,
}

impl Sessions {
    pub fn insert(&self, s: WebSession) -> bool {
        let mut m = self.map.lock().expect("sessions");
        if m.len() >= MAX_SESSIONS {
            return false;
        }
        m.insert(s.token.clone(), s);
        true
    }

    /// The session of this request, its idle time renewed (`None`: none, or expired).
    pub fn of(&self, headers: &HeaderMap, now_ms: u64) -> Option<WebSession> {
        let t = cookie(headers, SESSION_COOKIE)?;
        let mut m = self.map.lock().expect("sessions");
        let s = m.get_mut(&t)?;
        if now_ms.saturating_sub(s.last_ms) > IDLE_MS {
            return None;
        }
        s.last_ms = now_ms;
        Some(s.clone())
    }

    pub fn remove(&self, token: &str) -> Option<WebSession> {
        self.map.lock().expect("sessions").remove(token)
    }

    /// Take out the sessions idle too long (their stations are to be detached).
    pub fn expire(&self, now_ms: u64) -> Vec<WebSession> {
        let mut m = self.map.lock().expect("sessions");
        let old: Vec<String> = m
            .iter()
            .filter(|(_, s)| now_ms.saturating_sub(s.last_ms) > IDLE_MS)
            .map(|(k, _)| k.clone())
            .collect();
        old.into_iter().filter_map(|k| m.remove(&k)).collect()
    }

    pub fn len(&self) -> usize {
        self.map.lock().expect("sessions").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Failed logins per client address in a sliding window.
#[derive(Default)]
pub struct Limiter {
    map: Mutex<HashMap<IpAddr, VecDeque<u64>>>,
}

impl Limiter {
    /// This address may try now (fewer than [`MAX_FAILURES`] failures in the window).
    pub fn allows(&self, ip: IpAddr, now_ms: u64) -> bool {
        let mut m = self.map.lock().expect("limiter");
        let Some(q) = m.get_mut(&ip) else { return true };
        while q.front().is_some_and(|&t| now_ms.saturating_sub(t) > WINDOW_MS) {
            q.pop_front();
        }
        q.len() < MAX_FAILURES
    }

    pub fn failed(&self, ip: IpAddr, now_ms: u64) {
        let mut m = self.map.lock().expect("limiter");
        if m.len() > 10_000 {
            // A flood of addresses: forget the oldest state rather than grow without bound.
            m.retain(|_, q| q.back().is_some_and(|&t| now_ms.saturating_sub(t) <= WINDOW_MS));
        }
        m.entry(ip).or_default().push_back(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_set_strictly() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; twinspect_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "twinspect"), None);
        let c = set_cookie(SESSION_COOKIE, "x", true, None);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!set_cookie(SESSION_COOKIE, "x", false, None).contains("Secure"));
    }

    #[test]
    fn tokens_differ_and_compare_in_constant_shape() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..31]));
    }

    #[test]
    fn the_limiter_turns_an_address_away_after_ten_failures_for_a_minute() {
        let l = Limiter::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        for i in 0..MAX_FAILURES as u64 {
            assert!(l.allows(ip, 1000 + i));
            l.failed(ip, 1000 + i);
        }
        assert!(!l.allows(ip, 2000));
        assert!(l.allows("10.0.0.8".parse().unwrap(), 2000), "another address is not affected");
        assert!(l.allows(ip, 1000 + WINDOW_MS + MAX_FAILURES as u64 + 1), "the window slides");
    }

    #[test]
    fn an_idle_session_expires() {
        let s = Sessions::default();
        let w = WebSession {
            token: "t1".into(),
            csrf: "c".into(),
            operator: "c001".into(),
            name: "n".into(),
            agency: "customs".into(),
            station: 2,
            last_ms: 0,
        };
        assert!(s.insert(w));
        let mut h = HeaderMap::new();
        h.append("cookie", "twinspect_session=t1".parse().unwrap());
        assert!(s.of(&h, IDLE_MS).is_some());
        assert!(s.of(&h, 2 * IDLE_MS + 1).is_none());
        assert_eq!(s.expire(2 * IDLE_MS + 1).len(), 1);
        assert!(s.is_empty());
    }
}
