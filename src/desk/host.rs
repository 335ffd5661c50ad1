//! The desk on a thread of its own, for front ends that are not the windows' frame loop (the
//! opening bench's web server): they send [`Request`]s on one bounded channel and hear each
//! command's outcome through a reply callback, once it is final (a commit, a loaded bag), so a
//! remote front end never sees [`Done::Recording`] and never waits on the desk's thread itself.
//!
//! Owns: the loop (requests, the archive's answers, the sessions' timers), stations attached and
//! detached for remote sessions (reused, never removed: a station's index stays valid).
//!
//! Must not import: egui, wgpu, tokio (the reply callbacks are the caller's; the web server's
//! complete a tokio oneshot).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::{Command, Desk, DeskError, Done};

/// What a reply callback is handed, once.
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// Requests queued at most (a front end beyond it is told the desk is busy).
pub const QUEUE: usize = 256;
/// How long a command may wait for the archive before its front end is told so.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// What a remote front end asks of the desk.
pub enum Request {
    /// A station of `agency` for a new session (a free one reused); its index.
    Attach { agency: String, reply: Reply<Result<usize, DeskError>> },
    /// The session is over: its operator logged out (audited) and the station freed.
    Detach { station: usize },
    /// Apply a command at a station; the reply is the final outcome (after the commit or load).
    Apply { station: usize, cmd: Command, reply: Reply<Result<Done, DeskError>> },
    /// Read the desk (what a page shows); runs on the desk's thread, so keep it short.
    Read(Box<dyn FnOnce(&Desk) + Send>),
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct DeskLink {
    tx: Sender<Request>,
}

impl DeskLink {
    /// Queue a request; refused at once (never waits) when the desk is far behind or gone.
    pub fn send(&self, r: Request) -> Result<(), DeskError> {
        match self.tx.try_send(r) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(DeskError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(DeskError::NoArchive),
        }
    }
}

/// Start the desk's thread; it runs until every [`DeskLink`] is dropped, then settles the
/// archive's queue and returns the desk.
pub fn spawn(desk: Desk) -> (DeskLink, std::thread::JoinHandle<Desk>) {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let h = std::thread::Builder::new()
        .name("desk".into())
        .spawn(move || serve(desk, rx))
        .expect("spawning the desk thread");
    (DeskLink { tx }, h)
}

struct Waiting {
    reply: Reply<Result<Done, DeskError>>,
    since: Instant,
}

fn serve(mut desk: Desk, rx: Receiver<Request>) -> Desk {
    let mut free: HashMap<String, Vec<usize>> = HashMap::new();
    let mut attached: Vec<usize> = Vec::new();
    let mut waiting: HashMap<usize, Waiting> = HashMap::new();
    let mut made = 0usize;
    loop {
        let r = rx.recv_timeout(Duration::from_millis(5));
        let now = crate::unix_ms();
        match r {
            Ok(Request::Attach { agency, reply }) => {
                let reused = free.get_mut(&agency).and_then(Vec::pop);
                let got = match reused {
                    Some(i) => Ok(i),
                    None => {
                        made += 1;
                        desk.add_station(&format!("web-{agency}-{made}"), &agency, true)
                    }
                };
                if let Ok(i) = got {
                    attached.push(i);
                }
                reply(got);
            }
            Ok(Request::Detach { station }) => {
                if let Some(p) = attached.iter().position(|&i| i == station) {
                    attached.swap_remove(p);
                    if desk.station(station).operator.is_some() {
                        let _ = desk.apply(station, Command::Logout, now);
                    }
                    let _ = desk.apply(station, Command::CloseBag, now);
                    desk.take_said(station);
                    if let Some(w) = waiting.remove(&station) {
                        (w.reply)(Err(DeskError::NotLoggedIn));
                    }
                    free.entry(desk.station(station).agency.clone()).or_default().push(station);
                }
            }
            Ok(Request::Apply { station, cmd, reply }) => {
                if !attached.contains(&station) {
                    reply(Err(DeskError::NoStation(station)));
                } else if let std::collections::hash_map::Entry::Vacant(slot) = waiting.entry(station) {
                    desk.tick(station, now, true);
                    // What the station heard before this command is not this command's answer.
                    desk.take_said(station);
                    match desk.apply(station, cmd, now) {
                        Ok(Done::Recording | Done::Opening(_) | Done::Searching) => {
                            slot.insert(Waiting { reply, since: Instant::now() });
                        }
                        other => reply(other),
                    }
                } else {
                    reply(Err(DeskError::Busy));
                }
            }
            Ok(Request::Read(f)) => f(&desk),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        desk.poll();
        for &i in &attached {
            desk.tick(i, now, false);
            if !waiting.contains_key(&i) {
                continue;
            }
            let said = desk.take_said(i);
            let answer = said.into_iter().find(|r| {
                !matches!(r, Ok(Done::BreakDue { .. } | Done::Recording | Done::Opening(_) | Done::Searching))
            });
            if let Some(a) = answer {
                let w = waiting.remove(&i).expect("checked");
                (w.reply)(a);
            } else if waiting[&i].since.elapsed() > ANSWER_WITHIN {
                let w = waiting.remove(&i).expect("checked");
                (w.reply)(Err(DeskError::NotRecorded("the archive did not answer in time".into())));
            }
        }
    }
    for (_, w) in waiting.drain() {
        (w.reply)(Err(DeskError::NotRecorded("the desk is stopping".into())));
    }
    desk.settle(Duration::from_secs(10));
    desk
}
