//! Alert tones: short beeps for what an operator must not miss (a lost link, a dense object, a
//! projected threat revealed), played on a thread of their own through ALSA's `aplay` where the
//! machine has a sound card, and silent where it has none. Every alert is logged either way, so
//! a desk without speakers still has the record.
//!
//! Owns: [`Tones`], [`Tone`], the machine's sound check. Must not import: egui, wgpu, tokio.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// What the tone says: each has its own pitch and rhythm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// The scanner's link is lost: two low beeps.
    LinkDown,
    /// Something the beam did not penetrate: one high beep.
    Dense,
    /// A projected threat (training) was revealed: three rising beeps.
    Threat,
}

impl Tone {
    /// (frequency Hz, duration ms) of each beep, with 60 ms between them.
    fn beeps(self) -> &'static [(f32, u32)] {
        match self {
            Tone::LinkDown => &[(440.0, 180), (440.0, 180)],
            Tone::Dense => &[(1200.0, 150)],
            Tone::Threat => &[(660.0, 100), (880.0, 100), (1100.0, 140)],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tone::LinkDown => "link down",
            Tone::Dense => "dense object",
            Tone::Threat => "projected threat",
        }
    }
}

const RATE: u32 = 22_050;

/// 16-bit mono PCM of a tone at [`RATE`], with short fades (no clicks).
pub fn pcm(tone: Tone) -> Vec<i16> {
    let mut out = Vec::new();
    for &(f, ms) in tone.beeps() {
        let n = (RATE * ms / 1000) as usize;
        let fade = (RATE / 200) as usize;
        for k in 0..n {
            let env = (k.min(n - 1 - k) as f32 / fade as f32).min(1.0);
            let v = (k as f32 * f * std::f32::consts::TAU / RATE as f32).sin() * env * 0.4;
            out.push((v * f32::from(i16::MAX)) as i16);
        }
        out.extend(std::iter::repeat_n(0, (RATE * 60 / 1000) as usize));
    }
    out
}

/// Where tones go: a player thread when the machine can sound, else nowhere.
pub struct Tones {
    tx: Option<SyncSender<Tone>>,
    /// Why there is no sound, when there is none.
    pub silent_why: Option<String>,
}

/// The ALSA device tones go to when not the default one (`plughw:1,0` for a console's own
/// speaker; `file:'PATH',raw` to keep them in a file).
pub const DEVICE_ENV: &str = "TWINSPECT_SOUND_DEVICE";

impl Tones {
    /// A player if this machine has a sound card and `aplay` (alsa-utils); silent otherwise.
    /// [`DEVICE_ENV`] names the ALSA device to play on instead of the default.
    pub fn open() -> Tones {
        Tones::on_device(std::env::var(DEVICE_ENV).ok().filter(|d| !d.trim().is_empty()))
    }

    /// A player on ALSA device `device` (`None`: the default, where the machine has a sound
    /// card). A named device is taken as given: it may be a plugin with no card behind it.
    pub fn on_device(device: Option<String>) -> Tones {
        let cards = std::fs::read_to_string("/proc/asound/cards").unwrap_or_default();
        let why = if device.is_none() && (cards.trim().is_empty() || cards.contains("no soundcards")) {
            Some("no sound card".to_owned())
        } else if !has_aplay() {
            Some("aplay (alsa-utils) not installed".to_owned())
        } else {
            None
        };
        match why {
            Some(why) => Tones::silent(&why),
            None => {
                let (tx, rx) = sync_channel(4);
                let spawned =
                    std::thread::Builder::new().name("alert tones".into()).spawn(move || play(rx, device));
                match spawned {
                    Ok(_) => Tones { tx: Some(tx), silent_why: None },
                    Err(e) => Tones::silent(&format!("no player thread: {e}")),
                }
            }
        }
    }

    /// No sound (tests, a machine without speakers): alerts are only logged.
    pub fn silent(why: &str) -> Tones {
        Tones { tx: None, silent_why: Some(why.to_owned()) }
    }

    /// Sound `tone` (never waits: a tone that finds the player busy with four is dropped) and
    /// log it; returns whether it was sent to a speaker.
    pub fn sound(&self, tone: Tone, context: &str) -> bool {
        let played = self.tx.as_ref().is_some_and(|tx| tx.try_send(tone).is_ok());
        match &self.silent_why {
            Some(why) => tracing::info!("alert: {} ({context}), silent: {why}", tone.name()),
            None => tracing::info!("alert: {} ({context})", tone.name()),
        }
        played
    }
}

fn has_aplay() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join("aplay").is_file()))
}

fn play(rx: Receiver<Tone>, device: Option<String>) {
    while let Ok(tone) = rx.recv() {
        let mut aplay = std::process::Command::new("aplay");
        if let Some(d) = &device {
            aplay.args(["-D", d]);
        }
        let child = aplay
            .args(["-q", "-t", "raw", "-f", "S16_LE", "-c", "1", "-r", &RATE.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            tracing::warn!("alert tone: aplay did not start");
            continue;
        };
        let bytes: Vec<u8> = pcm(tone).iter().flat_map(|s| s.to_le_bytes()).collect();
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&bytes);
        }
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_differ_fade_in_and_out_and_a_silent_desk_only_logs() {
        let (a, b) = (pcm(Tone::LinkDown), pcm(Tone::Dense));
        assert_ne!(a.len(), b.len());
        assert_eq!(a[0], 0, "starts from silence");
        let peak = a.iter().map(|v| v.unsigned_abs()).max().unwrap();
        assert!(peak > 10_000 && peak < i16::MAX as u16, "{peak}");
        // Two beeps of 180 ms with 60 ms after each.
        assert_eq!(a.len(), 2 * (RATE as usize * 180 / 1000 + RATE as usize * 60 / 1000));
        let silent = Tones::silent("test");
        assert!(!silent.sound(Tone::Threat, "bag 3"));
    }

    /// The player for real: `aplay` (alsa-utils, installed by CI) on ALSA's file plugin, which
    /// needs no sound card, receives exactly the tone's samples.
    #[test]
    fn a_tone_reaches_alsa_through_aplay_sample_for_sample() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tone.raw");
        let tones = Tones::on_device(Some(format!("file:'{}',raw", out.display())));
        assert_eq!(tones.silent_why, None, "aplay must be installed (apt install alsa-utils)");
        assert!(tones.sound(Tone::Threat, "bag 3"));
        let want: Vec<u8> = pcm(Tone::Threat).iter().flat_map(|s| s.to_le_bytes()).collect();
        // aplay writes as it plays (real time) and pads the last period with silence.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let got = loop {
            let got = std::fs::read(&out).unwrap_or_default();
            if got.len() >= want.len() || std::time::Instant::now() > until {
                break got;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(got.len() >= want.len(), "{} of {} bytes", got.len(), want.len());
        assert!(got[..want.len()] == want[..], "the samples as made");
        assert!(got[want.len()..].iter().all(|b| *b == 0), "then silence");
    }
}
