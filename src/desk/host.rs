//! The desk for front ends that are not the windows' frame loop (the opening bench's web
//! server): on a thread of its own ([`spawn`]), or stepped by the workstation's frame loop
//! beside its two screens (`run --web`, [`channel`]). They send [`Request`]s on one bounded channel and hear each
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

/// A link and the host that serves it: the host is stepped by whoever owns the desk (its own
/// thread, [`spawn`], or the workstation's frame loop beside its two screens).
pub fn channel() -> (DeskLink, Host) {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    (
        DeskLink { tx },
        Host { rx, free: HashMap::new(), attached: Vec::new(), waiting: HashMap::new(), made: 0 },
    )
}

/// Start the desk's thread; it runs until every [`DeskLink`] is dropped, then settles the
/// archive's queue and returns the desk.
pub fn spawn(mut desk: Desk) -> (DeskLink, std::thread::JoinHandle<Desk>) {
    let (link, mut host) = channel();
    let h = std::thread::Builder::new()
        .name("desk".into())
        .spawn(move || {
            while host.step(&mut desk, Duration::from_millis(5)) {}
            host.stop();
            desk.settle(Duration::from_secs(10));
            desk
        })
        .expect("spawning the desk thread");
    (link, h)
}

struct Waiting {
    reply: Reply<Result<Done, DeskError>>,
    since: Instant,
}

/// The remote sessions' side of a desk: their stations, and the commands waiting for the archive.
pub struct Host {
    rx: Receiver<Request>,
    free: HashMap<String, Vec<usize>>,
    attached: Vec<usize>,
    waiting: HashMap<usize, Waiting>,
    made: usize,
}

impl Host {
    /// Take the requests queued (waiting up to `wait` for the first), then the archive's answers
    /// and the remote stations' timers. False once every link is gone.
    pub fn step(&mut self, desk: &mut Desk, wait: Duration) -> bool {
        let mut first = true;
        let mut open = true;
        // At most a queue's worth a step: a frame loop is never held up for long.
        for _ in 0..QUEUE {
            let r = if first && !wait.is_zero() {
                self.rx.recv_timeout(wait)
            } else {
                self.rx.try_recv().map_err(|e| match e {
                    crossbeam_channel::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    crossbeam_channel::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            };
            first = false;
            match r {
                Ok(req) => self.handle(desk, req),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        desk.poll();
        self.answer(desk);
        open
    }

    /// Every command still waiting is told the desk is stopping.
    pub fn stop(&mut self) {
        for (_, w) in self.waiting.drain() {
            (w.reply)(Err(DeskError::NotRecorded("the desk is stopping".into())));
        }
    }

    fn handle(&mut self, desk: &mut Desk, r: Request) {
        let now = crate::unix_ms();
        match r {
            Request::Attach { agency, reply } => {
                let reused = self.free.get_mut(&agency).and_then(Vec::pop);
                let got = match reused {
                    Some(i) => Ok(i),
                    None => {
                        self.made += 1;
                        desk.add_station(&format!("web-{agency}-{}", self.made), &agency, true)
                    }
                };
                if let Ok(i) = got {
                    self.attached.push(i);
                }
                reply(got);
            }
            Request::Detach { station } => {
                if let Some(p) = self.attached.iter().position(|&i| i == station) {
                    self.attached.swap_remove(p);
                    if desk.station(station).operator.is_some() {
                        let _ = desk.apply(station, Command::Logout, now);
                    }
                    let _ = desk.apply(station, Command::CloseBag, now);
                    desk.take_said(station);
                    if let Some(w) = self.waiting.remove(&station) {
                        (w.reply)(Err(DeskError::NotLoggedIn));
                    }
                    self.free.entry(desk.station(station).agency.clone()).or_default().push(station);
                }
            }
            Request::Apply { station, cmd, reply } => {
                if !self.attached.contains(&station) {
                    reply(Err(DeskError::NoStation(station)));
                } else if let std::collections::hash_map::Entry::Vacant(slot) = self.waiting.entry(station) {
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
            Request::Read(f) => f(desk),
        }
    }

    fn answer(&mut self, desk: &mut Desk) {
        let now = crate::unix_ms();
        for &i in &self.attached {
            desk.tick(i, now, false);
            if !self.waiting.contains_key(&i) {
                continue;
            }
            let said = desk.take_said(i);
            let answer = said.into_iter().find(|r| {
                !matches!(r, Ok(Done::BreakDue { .. } | Done::Recording | Done::Opening(_) | Done::Searching))
            });
            if let Some(a) = answer {
                let w = self.waiting.remove(&i).expect("checked");
                (w.reply)(a);
            } else if self.waiting[&i].since.elapsed() > ANSWER_WITHIN {
                let w = self.waiting.remove(&i).expect("checked");
                (w.reply)(Err(DeskError::NotRecorded("the archive did not answer in time".into())));
            }
        }
    }
}
