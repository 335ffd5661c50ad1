//! GigE Vision capture throughput on loopback: the emulator (as a GigE Vision device, looping
//! pre-scanned lines so the physics model is not the limit) streams 1536-channel dual-energy
//! blocks at a set line rate; our GVCP client sets it up and our GVSP block assembly receives.
//! Reports bytes/s of complete blocks and the blocks lost or incomplete (target: >= 1 Gbit/s with
//! none lost). Unicast to 127.0.0.3 only: nothing is broadcast.
//!
//! `cargo bench --bench gige`

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use twinspect::domain::profile::ScannerProfile;
use twinspect::source::gige::device::{GigeOptions, dreg, serve};
use twinspect::source::gige::gvcp::reg;
use twinspect::source::gige::{Gvcp, gvsp};

const HEIGHT: u32 = 512; // 256 lines a block
const PACKET: u32 = 8192 + 36; // jumbo-sized GVSP packets, as a capture NIC would be set

fn bench(c: &mut Criterion) {
    let p = ScannerProfile::load("desk-140").unwrap();
    let block_bytes = (p.channels * HEIGHT * 2) as u64;
    let mut g = c.benchmark_group("gige capture");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(block_bytes * 20));
    // 100x the desk scanner's 300 lines/s: 30,000 lines/s of 1536 channels, 1.47 Gbit/s offered.
    let ip = Ipv4Addr::new(127, 0, 0, 3);
    let _dev =
        serve(&p, GigeOptions { ip, speed: 100.0, loop_lines: Some(2048), ..Default::default() }).unwrap();
    let mut ctl = Gvcp::new(ip).unwrap();
    ctl.take_control().unwrap();
    ctl.write_reg(dreg::HEIGHT, HEIGHT).unwrap();
    ctl.write_reg(reg::SCPS0, PACKET).unwrap();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let size: libc::c_int = 32 << 20;
    // SAFETY: setsockopt on our socket with a pointer to a live c_int of the given size.
    unsafe {
        libc::setsockopt(
            rx.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    ctl.write_reg(reg::SCDA0, u32::from(Ipv4Addr::LOCALHOST)).unwrap();
    ctl.write_reg(reg::SCP0, u32::from(rx.local_addr().unwrap().port())).unwrap();
    ctl.write_reg(dreg::ACQUISITION_START, 1).unwrap();
    let mut blocks = gvsp::Blocks::new((PACKET - 36) as usize);
    blocks.max_bytes = block_bytes as usize;
    let mut buf = vec![0u8; 65536];
    let mut beat = Instant::now();
    let mut total_complete = 0u64;
    g.bench_function("emulator -> GVSP blocks, 1536 ch, 30,000 lines/s offered", |b| {
        b.iter_custom(|iters| {
            let want = iters * 20;
            let mut got = 0;
            let t0 = Instant::now();
            while got < want {
                if let Ok(n) = rx.recv(&mut buf) {
                    got += blocks.push(&buf[..n]).iter().filter(|b| b.complete()).count() as u64;
                }
                if beat.elapsed() > Duration::from_millis(500) {
                    ctl.heartbeat().unwrap();
                    beat = Instant::now();
                }
            }
            total_complete += got;
            t0.elapsed()
        })
    });
    g.finish();
    ctl.write_reg(dreg::ACQUISITION_STOP, 1).unwrap();
    let s = blocks.stats;
    println!(
        "complete blocks {total_complete}; over the whole run: {} complete, {} incomplete, {} lost, {} packets",
        s.blocks_complete, s.blocks_incomplete, s.blocks_lost, s.packets
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
