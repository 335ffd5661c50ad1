//! The hub's servers for tests and benchmarks, each on loopback and stopped on drop: a
//! nats-server with JetStream on file, and a throwaway PostgreSQL 15 cluster (Debian's; trust
//! authentication, database `twinspect`). Included by `tests/common` and by `benches/hub.rs`.
// Each crate uses part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A nats-server with JetStream on 127.0.0.1, its store in `dir`; killed on drop.
pub struct Nats {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Nats {
    pub fn start(port: u16, dir: &Path) -> Nats {
        Nats::start_with(port, dir, &[])
    }

    /// With more arguments (a configuration file of users and permissions, a cluster).
    pub fn start_with(port: u16, dir: &Path, more: &[&str]) -> Nats {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .args(more)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian's nats-server package; .ci/test installs it)");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(10), "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats { child, port, dir: dir.to_path_buf() }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Killed as a crash would (SIGKILL: no clean shutdown of its store).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Run a PostgreSQL program as the `postgres` user (PostgreSQL refuses to run as root).
pub fn as_postgres(program: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
        .args(args)
        .output()
        .expect("runuser (PostgreSQL 15: .ci/test installs it)");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A PostgreSQL cluster in `tmp/pg`, its files the `postgres` user's; stopped on drop.
pub struct Postgres {
    dir: PathBuf,
    pub port: u16,
}

impl Postgres {
    /// Without fsync (tests: the records' durability is PostgreSQL's, not what they check).
    pub fn start(tmp: &Path) -> Postgres {
        Postgres::start_with(tmp, false)
    }

    /// `fsync`: on where the records' durability is part of what is measured.
    pub fn start_with(tmp: &Path, fsync: bool) -> Postgres {
        let dir = tmp.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        // The postgres user must reach its directory through the caller's.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Command::new("chown").arg("postgres:postgres").arg(&dir).status().unwrap().success());
        let d = dir.to_str().unwrap();
        as_postgres("initdb", &["-D", d, "-A", "trust", "-U", "postgres", "--no-sync"]);
        let port = free_port();
        let mut opts = format!("-p {port} -k {d} -c listen_addresses=127.0.0.1");
        if !fsync {
            opts += " -c fsync=off";
        }
        as_postgres("pg_ctl", &["-D", d, "-o", &opts, "-l", &format!("{d}/log"), "-w", "start"]);
        let pg = Postgres { dir, port };
        as_postgres("createdb", &["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "twinspect"]);
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/twinspect", self.port)
    }

    /// Stopped (fast: connections cut), as a database that went away.
    #[allow(dead_code)] // not every test stops it
    pub fn stop(&self) {
        as_postgres("pg_ctl", &["-D", self.dir.to_str().unwrap(), "-m", "fast", "-w", "stop"]);
    }

    /// Started again on its port, after [`Postgres::stop`].
    #[allow(dead_code)]
    pub fn restart(&self) {
        let d = self.dir.to_str().unwrap();
        let opts = format!("-p {} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        as_postgres("pg_ctl", &["-D", d, "-o", &opts, "-l", &format!("{d}/log"), "-w", "start"]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl"), "-D"])
            .arg(&self.dir)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
