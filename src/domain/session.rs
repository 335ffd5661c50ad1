//! An operator's session at a screen: idle lock, and the reminder after continuous screening
//! (20 minutes by default: EU rules limit continuous screening of cabin baggage images).
//!
//! Owns: [`Session`] and [`SessionPolicy`]. Time is passed in (milliseconds).
//!
//! Must not import: egui, wgpu, tokio.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// No input for this long locks the screen (the operator logs in again).
    pub idle_lock_ms: u64,
    /// Continuous screening for this long brings a reminder to take a break.
    pub screening_reminder_ms: u64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy { idle_lock_ms: 5 * 60 * 1000, screening_reminder_ms: 20 * 60 * 1000 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    IdleLock,
    BreakReminder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub started_ms: u64,
    pub last_activity_ms: u64,
    reminded: bool,
}

impl Session {
    pub fn new(now_ms: u64) -> Self {
        Session { started_ms: now_ms, last_activity_ms: now_ms, reminded: false }
    }

    /// The operator did something (key, click, pointer movement).
    pub fn activity(&mut self, now_ms: u64) {
        self.last_activity_ms = self.last_activity_ms.max(now_ms);
    }

    /// Minutes of continuous screening so far.
    pub fn screening_minutes(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.started_ms) / 60_000
    }

    /// What is due now: an idle lock first; a break reminder once per session.
    pub fn check(&mut self, now_ms: u64, policy: &SessionPolicy) -> Option<SessionEvent> {
        if now_ms.saturating_sub(self.last_activity_ms) >= policy.idle_lock_ms {
            return Some(SessionEvent::IdleLock);
        }
        if !self.reminded && now_ms.saturating_sub(self.started_ms) >= policy.screening_reminder_ms {
            self.reminded = true;
            return Some(SessionEvent::BreakReminder);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_lock_and_one_break_reminder() {
        let p = SessionPolicy::default();
        let mut s = Session::new(0);
        let minute = 60_000;
        for m in 1..20 {
            s.activity(m * minute);
            assert_eq!(s.check(m * minute + 1, &p), None, "minute {m}");
        }
        s.activity(20 * minute);
        assert_eq!(s.check(20 * minute, &p), Some(SessionEvent::BreakReminder));
        assert_eq!(s.check(20 * minute + 1, &p), None, "reminded once");
        assert_eq!(s.screening_minutes(21 * minute), 21);
        assert_eq!(s.check(25 * minute, &p), Some(SessionEvent::IdleLock), "5 minutes without input");
    }
}
