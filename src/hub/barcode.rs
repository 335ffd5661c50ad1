//! A sorting line's barcode reader and the join of its reads to the scanner's bags. A reader
//! on the belt (a fixed-mount scanner or a scan arch) sends each parcel's code as a line over
//! TCP; it is stamped when it arrives. The parcel reaches the reader a fixed time before or
//! after it starts through the X-ray tunnel (the belt distance over its speed: `offset_ms`,
//! negative upstream), so a bag is joined to the read nearest its start plus that offset,
//! within a tolerance; a bag with none is a no-read (the scanner's own tag, if any, stays its
//! id), a read no bag takes is dropped and counted.
//!
//! Owns: the reader's line protocol (CR/LF-terminated printable ASCII, at most
//! [`MAX_CODE`] characters, anything else counted and dropped), the reader client thread
//! (reconnects for ever), and the join ([`BarcodeJoin`], pure). Must not import: egui, wgpu,
//! tokio, the desk.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, bounded};

/// Longest code accepted (GS1-128 carries at most 48 data characters; 2D codes on parcels are
/// read as their tracking number).
pub const MAX_CODE: usize = 64;

/// Where the reader is and where it stands on the belt.
#[derive(Clone, Debug, PartialEq)]
pub struct BarcodeConfig {
    /// `HOST:PORT` of the reader's TCP server.
    pub addr: String,
    /// A parcel is read this many ms after it starts through the tunnel (negative: before).
    pub offset_ms: i64,
    /// How far a read may be from where the bag puts it.
    pub tolerance_ms: u64,
}

impl BarcodeConfig {
    /// `tcp://HOST:PORT`.
    pub fn parse(url: &str, offset_ms: i64, tolerance_ms: u64) -> Result<BarcodeConfig, String> {
        let bad = || format!("--barcode {url:?}: expected tcp://HOST:PORT");
        let addr = url.strip_prefix("tcp://").ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad());
        }
        if offset_ms.unsigned_abs() > 600_000 || !(10..=60_000).contains(&tolerance_ms) {
            return Err(format!(
                "barcode offset {offset_ms} ms, tolerance {tolerance_ms} ms: at most 10 minutes, 10 ms to a minute"
            ));
        }
        Ok(BarcodeConfig { addr: addr.to_string(), offset_ms, tolerance_ms })
    }
}

/// One line from the reader: its code, or why it is not one.
pub fn parse_read(line: &[u8]) -> Result<String, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err("an empty read".into());
    }
    if line.len() > MAX_CODE {
        return Err(format!("a read of {} characters (at most {MAX_CODE})", line.len()));
    }
    if !line.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err("a read with control or non-ASCII characters".into());
    }
    Ok(String::from_utf8_lossy(line).trim().to_string())
}

/// Reads not yet given to a bag, in the order they came.
#[derive(Debug, Default)]
pub struct BarcodeJoin {
    offset_ms: i64,
    tolerance_ms: u64,
    reads: VecDeque<(u64, String)>,
    /// Reads no bag took (too old for any bag still to come).
    pub unclaimed: u64,
}

impl BarcodeJoin {
    pub fn new(cfg: &BarcodeConfig) -> BarcodeJoin {
        BarcodeJoin { offset_ms: cfg.offset_ms, tolerance_ms: cfg.tolerance_ms, ..Default::default() }
    }

    /// A read at `at_ms`.
    pub fn read(&mut self, at_ms: u64, code: String) {
        self.reads.push_back((at_ms, code));
        while self.reads.len() > 4096 {
            self.reads.pop_front();
            self.unclaimed += 1;
        }
    }

    fn expected(&self, started_ms: u64) -> i64 {
        started_ms as i64 + self.offset_ms
    }

    /// When every read that could belong to a bag started at `started_ms` has come.
    pub fn complete_at(&self, started_ms: u64) -> u64 {
        (self.expected(started_ms) + self.tolerance_ms as i64).max(0) as u64
    }

    /// The code of the bag started at `started_ms` (bags are asked in belt order): the read
    /// nearest where the bag puts it, within the tolerance, taken; reads older than that window
    /// can belong to no later bag and are dropped as unclaimed.
    pub fn take(&mut self, started_ms: u64) -> Option<String> {
        let expected = self.expected(started_ms);
        let tol = self.tolerance_ms as i64;
        while self.reads.front().is_some_and(|(at, _)| (*at as i64) < expected - tol) {
            self.reads.pop_front();
            self.unclaimed += 1;
        }
        let best = self
            .reads
            .iter()
            .enumerate()
            .filter(|(_, (at, _))| (*at as i64 - expected).abs() <= tol)
            .min_by_key(|(_, (at, _))| (*at as i64 - expected).abs())
            .map(|(i, _)| i)?;
        // Reads before the one taken belong to no later bag either.
        for _ in 0..best {
            self.reads.pop_front();
            self.unclaimed += 1;
        }
        self.reads.pop_front().map(|(_, code)| code)
    }
}

/// The reader client: a thread that connects to the reader (again and again), and the reads it
/// delivers, stamped in ms since the Unix epoch.
pub struct Reader {
    pub reads: Receiver<(u64, String)>,
    pub bad: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Reader {
    pub fn start(addr: String) -> std::io::Result<Reader> {
        let (tx, reads) = bounded(4096);
        let stop = Arc::new(AtomicBool::new(false));
        let bad = Arc::new(AtomicU64::new(0));
        let (s, b) = (stop.clone(), bad.clone());
        std::thread::Builder::new().name("barcode reader".into()).spawn(move || {
            let mut said_down = false;
            while !s.load(Ordering::Relaxed) {
                let conn = std::net::ToSocketAddrs::to_socket_addrs(&addr)
                    .ok()
                    .and_then(|mut a| a.next())
                    .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok());
                let Some(conn) = conn else {
                    if !said_down {
                        eprintln!(
                            "barcode reader {addr}: not reachable; parcels have no barcode until it is"
                        );
                        said_down = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                };
                eprintln!("barcode reader {addr}: connected");
                said_down = false;
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let mut conn = conn;
                let (mut buf, mut line, mut overlong) = ([0u8; 4096], Vec::new(), false);
                loop {
                    if s.load(Ordering::Relaxed) {
                        return;
                    }
                    let n = match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                        Err(_) => break,
                    };
                    for &c in &buf[..n] {
                        if c != b'\n' {
                            // A line longer than any code is not kept whole, only judged.
                            if line.len() > MAX_CODE + 1 {
                                overlong = true;
                            } else {
                                line.push(c);
                            }
                            continue;
                        }
                        let at = crate::unix_ms();
                        let read = if overlong {
                            Err("a read longer than any code".to_string())
                        } else {
                            parse_read(&line)
                        };
                        match read {
                            Ok(code) => {
                                let _ = tx.try_send((at, code));
                            }
                            Err(why) => {
                                b.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!("barcode reader {addr}: {why}");
                            }
                        }
                        (line, overlong) = (Vec::new(), false);
                    }
                }
                eprintln!("barcode reader {addr}: disconnected; reconnecting");
            }
        })?;
        Ok(Reader { reads, bad, stop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_printable_ascii_of_at_most_64_characters() {
        assert_eq!(parse_read(b"EMS123456789CN\r\n").unwrap(), "EMS123456789CN");
        assert_eq!(parse_read(b"1Z 999 AA1\n").unwrap(), "1Z 999 AA1");
        assert!(parse_read(b"\r\n").is_err());
        assert!(parse_read(&[b'A'; 65]).is_err());
        assert!(parse_read(b"AB\x00CD\n").is_err());
        assert!(parse_read("包裹\n".as_bytes()).is_err());
        assert!(BarcodeConfig::parse("tcp://127.0.0.1:7000", -300, 150).is_ok());
        assert!(BarcodeConfig::parse("udp://127.0.0.1:7000", 0, 150).is_err());
        assert!(BarcodeConfig::parse("tcp://127.0.0.1:0", 0, 150).is_err());
        assert!(BarcodeConfig::parse("tcp://h:1", 0, 0).is_err());
    }

    #[test]
    fn the_reader_client_keeps_good_reads_and_counts_garbage_and_reconnects() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let reader = Reader::start(addr).unwrap();
        let (mut c, _) = listener.accept().unwrap();
        let mut hostile = b"GOOD1\r\n".to_vec();
        hostile.extend(vec![b'A'; 10_000]);
        hostile.extend(b"\n\x01\x02\n\n");
        c.write_all(&hostile).unwrap();
        c.write_all(b"GO").unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        c.write_all(b"OD2\r\n").unwrap();
        drop(c);
        // The reader comes back (a pulled cable, a reboot): reads go on.
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(b"GOOD3\n").unwrap();
        let codes: Vec<String> =
            (0..3).map(|_| reader.reads.recv_timeout(Duration::from_secs(5)).unwrap().1).collect();
        assert_eq!(codes, ["GOOD1", "GOOD2", "GOOD3"]);
        assert_eq!(reader.bad.load(Ordering::Relaxed), 3, "the overlong, the control and the empty line");
    }

    #[test]
    fn each_bag_takes_the_read_nearest_where_the_belt_puts_it() {
        let cfg = BarcodeConfig { addr: String::new(), offset_ms: -500, tolerance_ms: 150 };
        let mut j = BarcodeJoin::new(&cfg);
        // Reader 500 ms upstream: parcels start through the tunnel at 1000, 2000, 3000, 4000;
        // the third was not read; a stray read at 1800 belongs to none.
        j.read(400, "stale".into());
        j.read(510, "A".into());
        j.read(1480, "B".into());
        j.read(1800, "stray".into());
        j.read(3530, "D".into());
        assert_eq!(j.complete_at(1000), 650);
        assert_eq!(j.take(1000).as_deref(), Some("A"));
        assert_eq!(j.unclaimed, 1, "the stale read");
        assert_eq!(j.take(2000).as_deref(), Some("B"));
        assert_eq!(j.take(3000), None, "a no-read");
        assert_eq!(j.unclaimed, 2, "the stray read, too old for bag 3");
        assert_eq!(j.take(4000).as_deref(), Some("D"));
        assert_eq!(j.take(5000), None);
    }
}
