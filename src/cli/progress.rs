//! Progress of a long command (capture, store-exercise) on standard error: a bar that redraws
//! in place on a terminal (indicatif), a plain line every few seconds when standard error is a
//! file or a pipe (logs, CI), nothing with `--quiet`. Results stay on standard output.
//!
//! Owns: [`Progress`]. Must not import: egui, wgpu, tokio.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Plain,
    Quiet,
}

impl Mode {
    /// A bar on a terminal, plain lines otherwise, nothing when quiet.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

/// One long command's progress: `done` of `total` (bags, seconds), with a line of words.
pub struct Progress {
    mode: Mode,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
    unit: &'static str,
    total: Option<u64>,
}

impl Progress {
    /// Progress towards `total` `unit`s (`None`: open-ended, a spinner).
    pub fn new(mode: Mode, total: Option<u64>, unit: &'static str) -> Progress {
        let bar = (mode == Mode::Bar).then(|| {
            let style = match total {
                Some(_) => indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {pos}/{len} {prefix} {msg}",
                ),
                None => indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} {spinner} {pos} {prefix} {msg}",
                ),
            }
            .expect("a fixed template")
            .progress_chars("=> ");
            let b = match total {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::new_spinner(),
            };
            b.set_style(style);
            b.set_prefix(unit);
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        let now = Instant::now();
        Progress { mode, bar, started: now, last_line: now, unit, total }
    }

    /// Where things stand: `done` units, and what to say beside it (made only when shown).
    pub fn update(&mut self, done: u64, words: impl FnOnce() -> String) {
        match (&self.bar, self.mode) {
            (Some(b), _) => {
                b.set_position(done);
                b.set_message(words());
            }
            (None, Mode::Plain) if self.last_line.elapsed() >= PLAIN_EVERY => {
                self.last_line = Instant::now();
                let at = self.started.elapsed().as_secs_f64();
                match (self.unit, self.total) {
                    // Seconds of seconds: the time said once.
                    ("s", Some(total)) => eprintln!("{at:.0} of {total} s: {}", words()),
                    (unit, Some(total)) => eprintln!("{at:.0} s: {done} of {total} {unit}, {}", words()),
                    (unit, None) => eprintln!("{at:.0} s: {done} {unit}, {}", words()),
                }
            }
            _ => {}
        }
    }

    /// A line that must not be drawn over by the bar (a bag written, a fault); not when quiet.
    pub fn say(&self, line: &str) {
        match (&self.bar, self.mode) {
            (Some(b), _) => b.println(line),
            (None, Mode::Plain) => eprintln!("{line}"),
            _ => {}
        }
    }

    /// A problem said even when quiet (a source fault), above the bar when there is one.
    pub fn warn(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// The bar cleared away (what it said is on the result lines that follow).
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
