//! Operator accounts: id, name, roles and a PIN stored only as an Argon2id hash (PHC string), with
//! a timed lockout after repeated wrong PINs, and a log of what happened.
//!
//! Owns: [`OperatorStore`] and its rules (PIN format, lockout, no enumeration: an unknown id and a
//! wrong PIN get the same message). Persistence is a serde document the caller stores; time is
//! passed in (milliseconds since the Unix epoch).
//!
//! Must not import: egui, wgpu, tokio.

use std::collections::BTreeMap;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};

use super::inspection::{Operator, Role};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRecord {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
    /// Argon2id PHC string; the PIN itself is never stored.
    pub pin_hash: String,
    #[serde(default)]
    pub disabled: bool,
}

/// Wrong PINs allowed before a lockout, and how long it lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub lockout_ms: u64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy { max_failures: 5, lockout_ms: 5 * 60 * 1000 }
    }
}

/// Something the security log records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    pub at_ms: u64,
    pub operator: String,
    pub what: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoginError {
    #[error("wrong operator id or PIN")]
    WrongCredentials,
    #[error("too many wrong PINs: locked for {remaining_secs} s more")]
    LockedOut { remaining_secs: u64 },
    #[error("this account is disabled")]
    Disabled,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error("operator id must be 1-32 letters, digits, '-' or '_'")]
    BadId,
    #[error("PIN must be 4 to 12 digits")]
    BadPin,
    #[error("operator {0} already exists")]
    Exists(String),
    #[error("no operator {0}")]
    Unknown(String),
    #[error("an operator needs at least one role")]
    NoRole,
    #[error("hashing the PIN failed: {0}")]
    Hash(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Attempts {
    failures: u32,
    locked_until_ms: u64,
}

/// All accounts of a workstation, with login state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorStore {
    #[serde(default)]
    pub policy: LockoutPolicy,
    #[serde(default)]
    operators: BTreeMap<String, OperatorRecord>,
    #[serde(default)]
    attempts: BTreeMap<String, Attempts>,
    #[serde(default)]
    pub log: Vec<SecurityEvent>,
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_pin(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.chars().all(|c| c.is_ascii_digit())
}

/// A hash to verify against when the id is unknown, so both paths cost the same time.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| Argon2::default().hash_password(b"000000").map(|h| h.to_string()).unwrap_or_default())
}

impl OperatorStore {
    pub fn add(
        &mut self,
        id: &str,
        name: &str,
        roles: &[Role],
        pin: &str,
        at_ms: u64,
    ) -> Result<(), AccountError> {
        if !valid_id(id) {
            return Err(AccountError::BadId);
        }
        if !valid_pin(pin) {
            return Err(AccountError::BadPin);
        }
        if roles.is_empty() {
            return Err(AccountError::NoRole);
        }
        if self.operators.contains_key(id) {
            return Err(AccountError::Exists(id.into()));
        }
        let pin_hash = Argon2::default()
            .hash_password(pin.as_bytes())
            .map_err(|e| AccountError::Hash(e.to_string()))?
            .to_string();
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        self.operators.insert(
            id.into(),
            OperatorRecord { id: id.into(), name: name.into(), roles, pin_hash, disabled: false },
        );
        self.log.push(SecurityEvent { at_ms, operator: id.into(), what: "account created".into() });
        Ok(())
    }

    pub fn remove(&mut self, id: &str, at_ms: u64) -> Result<(), AccountError> {
        self.operators.remove(id).ok_or_else(|| AccountError::Unknown(id.into()))?;
        self.attempts.remove(id);
        self.log.push(SecurityEvent { at_ms, operator: id.into(), what: "account removed".into() });
        Ok(())
    }

    pub fn set_disabled(&mut self, id: &str, disabled: bool, at_ms: u64) -> Result<(), AccountError> {
        let r = self.operators.get_mut(id).ok_or_else(|| AccountError::Unknown(id.into()))?;
        r.disabled = disabled;
        let what = if disabled { "account disabled" } else { "account enabled" };
        self.log.push(SecurityEvent { at_ms, operator: id.into(), what: what.into() });
        Ok(())
    }

    pub fn records(&self) -> impl Iterator<Item = &OperatorRecord> {
        self.operators.values()
    }

    /// Check an id and PIN. Wrong PINs count; at the policy's limit the account is locked for
    /// the lockout time and the lockout is logged.
    pub fn login(&mut self, id: &str, pin: &str, now_ms: u64) -> Result<Operator, LoginError> {
        let att = self.attempts.get(id).cloned().unwrap_or_default();
        if att.locked_until_ms > now_ms {
            return Err(LoginError::LockedOut {
                remaining_secs: (att.locked_until_ms - now_ms).div_ceil(1000),
            });
        }
        let Some(rec) = self.operators.get(id) else {
            // Same work and the same answer as a wrong PIN: ids cannot be probed.
            let _ = PasswordHash::new(dummy_hash())
                .map(|h| Argon2::default().verify_password(pin.as_bytes(), &h));
            self.log.push(SecurityEvent {
                at_ms: now_ms,
                operator: id.into(),
                what: "login failed: unknown id".into(),
            });
            return Err(LoginError::WrongCredentials);
        };
        let ok = PasswordHash::new(&rec.pin_hash)
            .map(|h| Argon2::default().verify_password(pin.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        if !ok {
            let a = self.attempts.entry(id.into()).or_default();
            a.failures += 1;
            let mut what = format!("login failed: wrong PIN ({} in a row)", a.failures);
            if a.failures >= self.policy.max_failures {
                a.locked_until_ms = now_ms + self.policy.lockout_ms;
                a.failures = 0;
                what = format!(
                    "locked out for {} s after {} wrong PINs",
                    self.policy.lockout_ms / 1000,
                    self.policy.max_failures
                );
            }
            self.log.push(SecurityEvent { at_ms: now_ms, operator: id.into(), what });
            return Err(LoginError::WrongCredentials);
        }
        if rec.disabled {
            self.log.push(SecurityEvent {
                at_ms: now_ms,
                operator: id.into(),
                what: "login refused: disabled".into(),
            });
            return Err(LoginError::Disabled);
        }
        let op = Operator { id: rec.id.clone(), name: rec.name.clone(), roles: rec.roles.clone() };
        self.attempts.remove(id);
        self.log.push(SecurityEvent { at_ms: now_ms, operator: id.into(), what: "logged in".into() });
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_hashed_and_checked() {
        let mut s = OperatorStore::default();
        s.add("c001", "Li Wei", &[Role::Customs], "2468", 0).unwrap();
        let rec = s.records().next().unwrap();
        assert!(rec.pin_hash.starts_with("$argon2id$"), "{}", rec.pin_hash);
        assert!(!rec.pin_hash.contains("2468"));
        let op = s.login("c001", "2468", 1).unwrap();
        assert_eq!(op.roles, vec![Role::Customs]);
        assert_eq!(s.login("c001", "1357", 2), Err(LoginError::WrongCredentials));
        assert_eq!(
            s.login("nobody", "2468", 3),
            Err(LoginError::WrongCredentials),
            "same answer for an unknown id"
        );
        assert_eq!(s.add("c001", "x", &[Role::Customs], "1111", 4), Err(AccountError::Exists("c001".into())));
        assert_eq!(s.add("c 2", "x", &[Role::Customs], "1111", 4), Err(AccountError::BadId));
        assert_eq!(s.add("c2", "x", &[Role::Customs], "12a4", 4), Err(AccountError::BadPin));
        assert_eq!(s.add("c2", "x", &[], "1234", 4), Err(AccountError::NoRole));
        // the store survives a round trip through its file format
        let text = toml::to_string(&s).unwrap();
        let mut back: OperatorStore = toml::from_str(&text).unwrap();
        assert!(back.login("c001", "2468", 5).is_ok());
    }

    #[test]
    fn repeated_wrong_pins_lock_the_account_for_a_while_and_are_logged() {
        let mut s = OperatorStore {
            policy: LockoutPolicy { max_failures: 3, lockout_ms: 60_000 },
            ..Default::default()
        };
        s.add("q7", "Wang Fang", &[Role::Quarantine], "9999", 0).unwrap();
        for t in 1..=3 {
            assert_eq!(s.login("q7", "0000", t), Err(LoginError::WrongCredentials));
        }
        assert_eq!(
            s.login("q7", "9999", 10_000),
            Err(LoginError::LockedOut { remaining_secs: 51 }),
            "even the right PIN waits"
        );
        assert!(s.log.iter().any(|e| e.operator == "q7" && e.what.starts_with("locked out")));
        assert!(s.login("q7", "9999", 60_004).is_ok(), "the lock expires");
        s.set_disabled("q7", true, 70_000).unwrap();
        assert_eq!(s.login("q7", "9999", 70_001), Err(LoginError::Disabled));
    }
}
