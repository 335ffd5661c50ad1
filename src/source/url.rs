//! Source URLs, as given on the command line and in configuration:
//! `synthetic://?seed=7&profile=desk-140`, `serial:///dev/ttyUSB0?baud=3000000&parity=none`,
//! `gige://192.168.1.20`, `replay://recordings/shift.tsrec?speed=4`.
//!
//! Owns: [`SourceUrl`] (scheme, location, query) and its parsing with clear errors. Knows nothing
//! of what each source does with its options.
//!
//! Must not import: anything of the crate (the fuzz target includes this file by path).

use std::collections::BTreeMap;
use std::fmt;

/// A parsed source URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceUrl {
    pub scheme: String,
    /// What follows `scheme://` up to `?`: a device path, a host, or empty.
    pub location: String,
    pub query: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("`{0}` is not a source URL (expected scheme://location?key=value&...)")]
    Syntax(String),
    #[error("unknown source `{0}://` (known: synthetic, serial, gige, replay, dicos)")]
    Scheme(String),
    #[error("`{key}` is given twice in the source URL")]
    Duplicate { key: String },
    #[error("`{key}={value}`: {why}")]
    Value { key: String, value: String, why: String },
    #[error("unknown option `{key}` for {scheme}:// (known: {known})")]
    UnknownKey { scheme: String, key: String, known: String },
}

pub const SCHEMES: [&str; 5] = ["synthetic", "serial", "gige", "replay", "dicos"];

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl SourceUrl {
    pub fn parse(s: &str) -> Result<SourceUrl, UrlError> {
        let syntax = || UrlError::Syntax(s.to_owned());
        let (scheme, rest) = s.split_once("://").ok_or_else(syntax)?;
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-') {
            return Err(syntax());
        }
        let scheme = scheme.to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return Err(UrlError::Scheme(scheme));
        }
        let (loc, q) = rest.split_once('?').unwrap_or((rest, ""));
        let location = percent_decode(loc).ok_or_else(syntax)?;
        let mut query = BTreeMap::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k).ok_or_else(syntax)?.to_ascii_lowercase();
            let v = percent_decode(v).ok_or_else(syntax)?;
            if query.insert(k.clone(), v).is_some() {
                return Err(UrlError::Duplicate { key: k });
            }
        }
        Ok(SourceUrl { scheme, location, query })
    }

    /// Refuse options this source does not know (a typo must not be silently ignored).
    pub fn only_keys(&self, known: &[&str]) -> Result<(), UrlError> {
        match self.query.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(UrlError::UnknownKey {
                scheme: self.scheme.clone(),
                key: k.clone(),
                known: known.join(", "),
            }),
            None => Ok(()),
        }
    }

    /// An option parsed as `T`, or `default` when absent.
    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, UrlError>
    where
        T::Err: fmt::Display,
    {
        match self.query.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| UrlError::Value {
                key: key.into(),
                value: v.clone(),
                why: e.to_string(),
            }),
        }
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

/// Percent-encode `%`, control characters and the given delimiters, so a printed URL parses back
/// to the same thing.
fn escape(s: &str, delimiters: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c.is_ascii_control() || delimiters.contains(&c) {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, escape(&self.location, &['?']))?;
        for (i, (k, v)) in self.query.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{}={}", escape(k, &['&', '=']), escape(v, &['&']))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        let u = SourceUrl::parse("synthetic://?seed=7&profile=desk-140").unwrap();
        assert_eq!((u.scheme.as_str(), u.location.as_str()), ("synthetic", ""));
        assert_eq!(u.get("seed", 1u64).unwrap(), 7);
        assert_eq!(u.get_str("profile"), Some("desk-140"));
        let u = SourceUrl::parse("serial:///dev/ttyUSB0?baud=3000000").unwrap();
        assert_eq!(u.location, "/dev/ttyUSB0");
        assert_eq!(u.get("baud", 9600u32).unwrap(), 3_000_000);
        assert_eq!(u.get("missing", 5u32).unwrap(), 5);
        let u = SourceUrl::parse("GIGE://192.168.1.20").unwrap();
        assert_eq!((u.scheme.as_str(), u.location.as_str()), ("gige", "192.168.1.20"));
        let u = SourceUrl::parse("serial:///tmp/my%20scanner?parity=even").unwrap();
        assert_eq!(u.location, "/tmp/my scanner");
        assert_eq!(u.to_string(), "serial:///tmp/my scanner?parity=even");
        // delimiters inside names and values are escaped, so what is printed parses back the same
        let u = SourceUrl::parse("serial:///a%3Fb?k%3Dx=v%26w&e=%25").unwrap();
        assert_eq!((u.location.as_str(), u.get_str("k=x"), u.get_str("e")), ("/a?b", Some("v&w"), Some("%")));
        assert_eq!(SourceUrl::parse(&u.to_string()), Ok(u));
    }

    #[test]
    fn bad_urls_get_clear_errors() {
        assert!(matches!(SourceUrl::parse("/dev/ttyUSB0"), Err(UrlError::Syntax(_))));
        assert!(matches!(SourceUrl::parse("usb://x"), Err(UrlError::Scheme(s)) if s == "usb"));
        assert!(matches!(SourceUrl::parse("serial:///x?baud=1&baud=2"), Err(UrlError::Duplicate { .. })));
        assert!(matches!(SourceUrl::parse("serial:///x%zz"), Err(UrlError::Syntax(_))));
        let u = SourceUrl::parse("serial:///x?baud=fast&bad=1").unwrap();
        let e = u.get("baud", 0u32).unwrap_err().to_string();
        assert!(e.contains("baud=fast"), "{e}");
        let e = u.only_keys(&["baud"]).unwrap_err().to_string();
        assert!(e.contains("`bad`") && e.contains("known: baud"), "{e}");
    }
}
