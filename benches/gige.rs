//! GigE Vision capture throughput on loopback: the emulator (as a GigE Vision device, looping
//! pre-scanned lines so the physics model is not the limit) streams 1536-channel dual-energy
//! blocks at a set line rate; our GVCP client sets it up and our GVSP block assembly receives.
//! Reports bytes/s of complete blocks and the blocks lost or incomplete (target: >= 1 Gbit/s with
//! none lost).
//!
//! End to end: the emulator as a 2048-channel detector at 30,000 lines/s offered, through the
//! `gige://` driver (GenICam set-up, calibration cycle, resends, numbering), the assembler, and the
//! GPU live ring composing both stations, in lines/s (target: >= 20,000), with what was dropped
//! or missing. Unicast to 127.0.0.3 and 127.0.0.4 only: nothing is broadcast.
//!
//! `cargo bench --bench gige` (WGPU_BACKEND=vulkan where there is no GPU)

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use twinspect::assemble::Assembler;
use twinspect::domain::material::MaterialLut;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::view::Preset;
use twinspect::emulator::gige::{GigeOptions, dreg, serve};
use twinspect::pipeline::gpu::{GpuContext, ImageSpec, Kernels, LiveView};
use twinspect::source::gige::driver::{GigeSourceOptions, spawn};
use twinspect::source::gige::gvcp::reg;
use twinspect::source::gige::{Gvcp, gvsp};
use twinspect::source::{SourceEvent, SourceStats};

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

/// 30,000 lines/s of 2048 channels from the emulator, through everything the workstation does
/// with them: the driver, the assembler, the GPU ring and both stations' compose.
fn end_to_end(c: &mut Criterion) {
    const OFFERED: f64 = 30_000.0;
    const PER_ITER: u64 = 3000;
    let mut p = ScannerProfile::load("hub-160").unwrap();
    p.channels = 2048;
    let ip = Ipv4Addr::new(127, 0, 0, 4);
    let speed = OFFERED / p.line_rate_hz;
    let _dev = serve(&p, GigeOptions { ip, speed, loop_lines: Some(4096), ..Default::default() }).unwrap();
    let mut o = GigeSourceOptions::new(ip, p.channels as usize);
    o.lines_per_block = 128;
    o.packet_size = 8192 + 36;
    o.capacity = 65536;
    o.line_rate_hz = OFFERED;
    let src = spawn(o);

    let ctx = GpuContext::headless().expect("GPU adapter (WGPU_BACKEND=vulkan for lavapipe)");
    eprintln!("adapter: {}", ctx.describe());
    let kernels = Kernels::new(&ctx.device);
    let lut = MaterialLut::for_profile(&p).unwrap();
    let spec = ImageSpec { channels: p.channels, lines: 4096, full_scale: p.full_scale(), views: 2 };
    let mut live = LiveView::new(&ctx.device, &ctx.queue, &kernels, spec, &lut).unwrap();
    let mut asm = Assembler::new(p.channels as usize, p.full_scale());
    let two_stations = [Preset::Standard.settings(), Preset::Os.settings()];
    // Up to 512 lines a strip (a 60 Hz frame's worth at 30,000 lines/s), as the workstation
    // drains its channel each frame.
    let step = |asm: &mut Assembler, live: &mut LiveView| -> u64 {
        let mut events: Vec<SourceEvent> = Vec::with_capacity(256);
        if let Ok(ev) = src.events.recv_timeout(Duration::from_secs(5)) {
            events.push(ev);
        }
        events.extend(src.events.try_iter().take(511));
        let batch = asm.feed(events);
        if batch.calibration_changed
            && let Some(cal) = asm.calibration.as_ref()
        {
            live.set_calibration(&ctx.queue, &cal.table());
        }
        let n = batch.lines as u64;
        if n > 0 {
            live.push_lines(&ctx.queue, &batch.low, &batch.high, &batch.missing);
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            live.encode(&ctx.queue, &mut enc, &kernels, &two_stations);
            let idx = ctx.queue.submit([enc.finish()]);
            let _ = ctx.device.poll(wgpu::PollType::Wait { submission_index: Some(idx), timeout: None });
        }
        n
    };
    // Calibrated and streaming before timing starts.
    let t = Instant::now();
    while asm.calibration.is_none() || asm.stats.lines_shown < 4096 {
        step(&mut asm, &mut live);
        assert!(t.elapsed() < Duration::from_secs(60), "no calibrated stream in 60 s: {:?}", src.stats);
    }
    let dropped0 = SourceStats::get(&src.stats.lines_dropped);
    let missing0 = asm.stats.lines_missing;
    let mut g = c.benchmark_group("gige end to end");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(PER_ITER));
    g.bench_function(
        "emulator -> gige:// -> assembler -> GPU ring, 2048 ch, both stations, 30,000 lines/s offered",
        |b| {
            b.iter_custom(|iters| {
                let want = iters * PER_ITER;
                let mut got = 0;
                let t0 = Instant::now();
                while got < want {
                    got += step(&mut asm, &mut live);
                }
                t0.elapsed()
            })
        },
    );
    g.finish();
    let st = &src.stats;
    println!(
        "while measured: {} lines dropped (consumer too slow), {} missing; source: {} resends requested, {} honoured, {} blocks lost or incomplete",
        SourceStats::get(&st.lines_dropped) - dropped0,
        asm.stats.lines_missing - missing0,
        SourceStats::get(&st.resends_requested),
        SourceStats::get(&st.resends_honoured),
        SourceStats::get(&st.frames_lost),
    );
}

criterion_group!(benches, bench, end_to_end);
criterion_main!(benches);
