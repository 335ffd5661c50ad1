//! Command line: argument parsing and the headless commands (`classify`, `render`), plus
//! starting the workstation window.
//!
//! Owns: user-facing command behaviour and messages. Uses every other layer; nothing imports it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::domain::calib::Calibration;
use crate::domain::inspection::Role;
use crate::domain::material::MaterialLut;
use crate::domain::operators::OperatorStore;
use crate::domain::profile::{DEFAULT_PROFILE, ScannerProfile};
use crate::domain::scan::RawFrame;
use crate::domain::synth::{SyntheticScanner, generate_bag};
use crate::domain::view::{Preset, ViewSettings};
use crate::pipeline::gpu;

mod archive;
mod hub;
pub mod progress;
mod stream;

#[derive(Parser, Debug)]
#[command(
    name = "twinspect",
    version,
    about = "Dual-energy X-ray inspection workstation (one machine, two screens)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Scanner profile (built-in name or path to a .toml) for the workstation.
    #[arg(long, default_value = DEFAULT_PROFILE, global = true)]
    pub profile: String,
    /// No progress on standard error (a bar on a terminal, else a line every 5 s); results and
    /// problems are still said.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The archive's folder (bags, scans, decisions, audit trail); default:
    /// $XDG_DATA_HOME/twinspect or ~/.local/share/twinspect.
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum OperatorAction {
    /// Add an account; the PIN (4-12 digits) is the first line of standard input.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// customs, quarantine, supervisor, trainer or admin (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// List accounts (never PINs).
    List,
    Remove {
        #[arg(long)]
        id: String,
    },
    Disable {
        #[arg(long)]
        id: String,
    },
    Enable {
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the workstation window fed by the built-in scanner emulator (the default).
    Run {
        /// Seed of the emulator's bags.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Operator accounts (made with `twinspect operators`); without it the emulator runs
        /// with two demonstration accounts.
        #[arg(long)]
        operators: Option<PathBuf>,
        /// Window placement (TOML: one `[[stations]]` with position, size, fullscreen per screen);
        /// default: side by side on one monitor.
        #[arg(long)]
        layout: Option<PathBuf>,
        /// The site: its agencies (one screen each), their codes and categories, and the
        /// decision policy (TOML, `hardware/sites/`); default: customs and quarantine.
        #[arg(long)]
        site: Option<PathBuf>,
        /// Where the lines come from: a source URL (`serial:///dev/ttyUSB0?baud=3000000`,
        /// `gige://192.168.1.20`, `synthetic://?seed=7`, `replay://FILE.tsrec?speed=4`,
        /// `dicos://DIR` for a DICOS DX pair); default: the built-in emulator with --seed.
        #[arg(long)]
        source: Option<String>,
        /// Also record everything the source delivers, with its timing, to FILE (.tsrec).
        #[arg(long)]
        record: Option<PathBuf>,
        /// Also serve the opening bench (`twinspect web`) on ADDR from this workstation's own desk
        /// and archive: the same accounts, bags and openings as its screens (port 0: any free
        /// port, printed).
        #[arg(long, value_name = "ADDR")]
        web: Option<std::net::SocketAddr>,
        /// With --web: serve HTTPS with the site's certificate (PEM), with --tls-key.
        #[arg(long, requires_all = ["tls_key", "web"])]
        tls_cert: Option<PathBuf>,
        /// With --web: the certificate's private key (PEM).
        #[arg(long, requires_all = ["tls_cert", "web"])]
        tls_key: Option<PathBuf>,
        #[command(flatten)]
        hub: HubStationArgs,
    },
    /// Serve the physics-based scanner emulator over a serial link (a pseudo-terminal or a
    /// device), with optional injected loss, corruption, noise and disconnects.
    Emulate(stream::EmulateArgs),
    /// A scanner node of a hub: capture from a source into this machine's archive (the outbox)
    /// and publish every whole bag to the hub's NATS JetStream, each once, whether the broker
    /// is up or not (what waits goes out on reconnect). Runs until SIGTERM, Ctrl-C, --bags or
    /// --seconds.
    Node(hub::NodeArgs),
    /// A screening bot of a hub, for load tests and demos: takes the next bag for its agency
    /// as a station does, looks for --think-ms, and gives every bag the same decision.
    Bot(hub::BotArgs),
    /// The hub's administration: keys for nodes and stations, the broker's permissions from
    /// the hub's users file, and setting up streams, consumers and the PostgreSQL writer role.
    #[command(subcommand)]
    Hub(hub::HubCommand),
    /// Record bags from a source, headless: bag-NNNNNN.tiff (two pages) per bag, then the link's
    /// statistics (lines, bags, missing lines, CRC errors, resends).
    Capture(stream::CaptureArgs),
    /// A GigE Vision device's GenICam features, with values and ranges (as `arv-tool-0.8
    /// features` lists them); `--set NAME=VALUE` sets integers, floats, enumerations and
    /// booleans first, and a command's name alone executes it.
    Genicam(stream::GenicamArgs),
    /// Write man pages (twinspect.1 and one per subcommand, twinspect-capture.1 ...) to DIR.
    Manpage {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions { shell: clap_complete::Shell },
    /// List archived bags, newest first, one per line (archive id first), or search them by
    /// time, tag, operator, agency, decision or mark category.
    Bags(archive::BagsArgs),
    /// The archive's audit trail: verify its hash chain, or list it.
    Audit {
        #[command(subcommand)]
        action: archive::AuditAction,
    },
    /// Export: the records of a period as CSV, an archived bag's image with its marks as PNG, or
    /// a bag as DICOS (`export --dicos --bag ID --out DIR`: a DX image per energy and a Threat
    /// Detection Report per agency). Each export is audited.
    #[command(args_conflicts_with_subcommands = true)]
    Export {
        #[command(subcommand)]
        action: Option<archive::ExportAction>,
        /// Same as `export dicos`.
        #[arg(long, requires_all = ["bag", "out"])]
        dicos: bool,
        #[arg(long, requires = "dicos")]
        bag: Option<i64>,
        #[arg(long, requires = "dicos")]
        out: Option<PathBuf>,
    },
    /// Bring a DICOS DX pair (low and high energy images of one bag, from files or a folder)
    /// into the archive as a new bag, shown among the earlier bags on both screens.
    Import {
        /// DICOS files or folders (their *.dcs / *.dcm files; TDRs among them are skipped).
        #[arg(long, required = true, num_args = 1..)]
        dicos: Vec<PathBuf>,
    },
    /// The opening bench in a browser (移动查验终端): the openings waiting, each bag's image (zoom by
    /// tiles, the image functions, every agency's marks) and the findings form, for tablets on
    /// the site's LAN. Serves the archive in --data as its writer; beside a workstation on the
    /// same archive, use `run --web` instead. With --hub and --records: the hub's opening
    /// bench, serving every line's parcels its stations asked to open (brought into --data from
    /// the hub), its findings sent to the hub's records.
    Web {
        /// Address to listen on (port 0: any free port, printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Operator accounts (made with `twinspect operators`); without it, the demonstration
        /// accounts (c001 / 1111, q001 / 2222).
        #[arg(long)]
        operators: Option<PathBuf>,
        /// The site (agencies, codes, categories), as for `run`.
        #[arg(long)]
        site: Option<PathBuf>,
        /// Render bags on the CPU even where there is a GPU.
        #[arg(long)]
        cpu: bool,
        /// Serve HTTPS with the site's certificate (PEM: the chain, leaf first), with --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The hub's NATS servers (nats://HOST:PORT[,HOST:PORT...]), with --records: serve the
        /// parcels any of its stations asked to open.
        #[arg(long, requires = "records")]
        hub: Option<String>,
        /// With --hub: the hub's PostgreSQL records (postgres://USER@HOST:PORT/DB), where the
        /// findings go (the scans stay on the hub and in --data).
        #[arg(long, requires = "hub")]
        records: Option<String>,
        /// With --hub: this bench's name on the hub (its users file's `[[bench]]`).
        #[arg(long, requires = "hub", default_value = "bench")]
        name: String,
        /// With --hub: this bench's key (an nkey seed file, mode 600), when the hub uses keys.
        #[arg(long, requires = "hub")]
        credentials: Option<PathBuf>,
    },
    /// Training with threat image projection: reports.
    Train {
        #[command(subcommand)]
        action: archive::TrainAction,
    },
    /// Write bags, decisions and marks as fast as possible, acknowledging each commit (the
    /// kill -9 harness's victim).
    #[command(hide = true)]
    StoreExercise(archive::ExerciseArgs),
    /// Manage operator accounts (PINs are read from standard input and stored as Argon2id hashes).
    Operators {
        /// The accounts file (TOML).
        #[arg(long)]
        file: PathBuf,
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// Render both screens' full UI to PNG without a display (the workstation fed by the
    /// emulator, or by --source), after an optional script of operator actions: for
    /// documentation, bug reports and tests. Writes STATION.png, STATION.txt (the screen's
    /// texts) and both.png; `snap NAME` in the script writes NAME-STATION.png etc. on the way.
    Snapshot {
        #[arg(long)]
        out: PathBuf,
        /// Seed of the emulator's bags.
        #[arg(long, default_value_t = 1, conflicts_with = "source")]
        synthetic: u64,
        /// Another source instead (`replay://FILE`, `dicos://DIR`, ...).
        #[arg(long)]
        source: Option<String>,
        /// Actions, one per line: login, logout, lang, preset, key, zoom, hover, mark, decide,
        /// click, snap (see the README).
        #[arg(long)]
        script: Option<PathBuf>,
        /// Bags to wait for before the script runs.
        #[arg(long, default_value_t = 2)]
        bags: u64,
        /// Each screen's size in pixels.
        #[arg(long, default_value = "1280x800")]
        size: String,
        /// Operator accounts (default: the demonstration accounts).
        #[arg(long)]
        operators: Option<PathBuf>,
        /// The site file (`hardware/sites/`): one screen per agency, named after it.
        #[arg(long)]
        site: Option<PathBuf>,
        /// The screens as stations of a hub, as `run --hub` (the script's `wait` lets bags come).
        #[command(flatten)]
        hub: HubStationArgs,
    },
    /// Classify attenuation pairs: reads CSV with `log_att_low,log_att_high` columns (stdin when
    /// no file), writes every input column plus `zeff` and `class`.
    Classify { file: Option<PathBuf> },
    /// Render a scan to PNG with the same pipeline as the workstation, without a window.
    Render {
        /// Scan a synthetic bag generated from this seed.
        #[arg(long, conflicts_with = "raw")]
        synthetic: Option<u64>,
        /// With --synthetic: scan one item of the library alone on the belt instead of a bag
        /// (knife, gun, laptop, fruit, animal_in_box, ...), drawn from the seed.
        #[arg(long, requires = "synthetic")]
        item: Option<String>,
        /// With --synthetic: write the bag's ground truth as JSON (every item with its parts:
        /// material, class, mass in g, outline in mm).
        #[arg(long, requires = "synthetic")]
        truth: Option<PathBuf>,
        /// Render a raw scan saved with --tiff-out (reads FILE and FILE.calib.json).
        #[arg(long)]
        raw: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "standard")]
        preset: Preset,
        /// Full view settings as JSON (overrides --preset).
        #[arg(long)]
        settings: Option<PathBuf>,
        /// Position of the VDE sweep (0 dense end .. 1 thin end) for --preset vde.
        #[arg(long, default_value_t = 0.5)]
        vde_phase: f32,
        /// Output PNG.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the raw scan as a two-page 16-bit TIFF (low, high) and its calibration.
        #[arg(long)]
        tiff_out: Option<PathBuf>,
        /// Use the CPU twin instead of the GPU.
        #[arg(long)]
        cpu: bool,
        /// Project a threat of the built-in library into the bag (threat image projection):
        /// "kitchen knife", "lead block", "steel frame" or "pistol"; placed inside the bag by
        /// --tip-seed.
        #[arg(long)]
        tip: Option<String>,
        #[arg(long, default_value_t = 1)]
        tip_seed: u64,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => run_workstation(
            &cli.profile,
            1,
            WorkstationFiles::default(),
            None,
            cli.data.as_deref(),
            None,
            None,
            &HubStationArgs::default(),
        ),
        Some(Command::Snapshot { out, synthetic, source, script, bags, size, operators, site, hub }) => {
            snapshot(
                &cli.profile,
                SnapshotArgs {
                    out,
                    synthetic,
                    source,
                    script,
                    bags,
                    size,
                    operators,
                    site,
                    data: cli.data,
                    hub,
                },
            )
        }
        Some(Command::Run { seed, operators, layout, site, source, record, web, tls_cert, tls_key, hub }) => {
            run_workstation(
                &cli.profile,
                seed,
                WorkstationFiles {
                    operators: operators.as_deref(),
                    layout: layout.as_deref(),
                    site: site.as_deref(),
                },
                source.as_deref(),
                cli.data.as_deref(),
                record.as_deref(),
                web.map(|listen| (listen, tls_cert.zip(tls_key))),
                &hub,
            )
        }
        Some(Command::Emulate(a)) => stream::emulate(&ScannerProfile::load(&cli.profile)?, a),
        Some(Command::Capture(a)) => {
            stream::capture(&cli.profile, cli.data.as_deref(), a, progress::Mode::detect(cli.quiet))
        }
        Some(Command::Genicam(a)) => stream::genicam(a),
        Some(Command::Bot(a)) => hub::bot(a),
        Some(Command::Hub(c)) => hub::hub(c),
        Some(Command::Node(a)) => {
            hub::node(&cli.profile, cli.data.as_deref(), a, progress::Mode::detect(cli.quiet))
        }
        Some(Command::Manpage { out }) => manpages(&out),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "twinspect", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Bags(a)) => archive::bags(cli.data.as_deref(), a),
        Some(Command::Audit { action }) => archive::audit_command(cli.data.as_deref(), action),
        Some(Command::StoreExercise(a)) => {
            archive::exercise(cli.data.as_deref(), a, progress::Mode::detect(cli.quiet))
        }
        Some(Command::Train { action }) => {
            archive::train(&cli.profile, cli.data.as_deref(), action, progress::Mode::detect(cli.quiet))
        }
        Some(Command::Web {
            listen,
            operators,
            site,
            cpu,
            tls_cert,
            tls_key,
            hub,
            records,
            name,
            credentials,
        }) => {
            let (operators, demo_accounts) = web_accounts(operators.as_deref())?;
            let opts = crate::web::Options {
                listen,
                data: archive::data_dir(cli.data.as_deref())?,
                profile: ScannerProfile::load(&cli.profile)?,
                config: load_site(site.as_deref())?,
                cpu,
                tls: tls_cert.zip(tls_key),
            };
            let bench = match (hub, records) {
                (Some(hub), Some(records)) => {
                    Some(hub::bench_config(&hub, &records, &name, credentials.as_deref(), &opts.config)?)
                }
                _ => None,
            };
            let store = crate::files::store::Store::open(&opts.data)
                .with_context(|| format!("opening the archive at {}", opts.data.display()))?;
            let intake = match bench {
                Some(cfg) => {
                    println!(
                        "opening bench {} of hub {}: openings into {}",
                        cfg.name,
                        cfg.hub.servers.join(","),
                        opts.data.display()
                    );
                    Some(crate::hub::bench::HubBench::start(cfg, store.second_writer()?)?)
                }
                None => None,
            };
            let scheme = if opts.tls.is_some() { "https" } else { "http" };
            let served = crate::web::serve_over(opts, store, operators, demo_accounts, |addr| {
                println!("listening on {scheme}://{addr}/");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            });
            if let Some(i) = intake {
                let p = i.progress.clone();
                i.stop();
                use std::sync::atomic::Ordering::Relaxed;
                println!("bags taken from the hub for their opening: {}", p.taken.load(Relaxed));
                println!("decisions recorded: {}", p.recorded.load(Relaxed));
                println!("refused: {}", p.refused.load(Relaxed));
            }
            served
        }
        Some(Command::Export { action, dicos, bag, out }) => {
            let action = match (action, dicos, bag, out) {
                (Some(a), _, _, _) => a,
                (None, true, Some(bag), Some(out)) => archive::ExportAction::Dicos { bag, out },
                _ => anyhow::bail!("export what? csv, png, dicos (or --dicos --bag ID --out DIR)"),
            };
            archive::export(&cli.profile, cli.data.as_deref(), action, progress::Mode::detect(cli.quiet))
        }
        Some(Command::Import { dicos }) => archive::import_dicos(
            &cli.profile,
            cli.data.as_deref(),
            &dicos,
            progress::Mode::detect(cli.quiet),
        ),
        Some(Command::Operators { file, action }) => operators_command(cli.data.as_deref(), &file, action),
        Some(Command::Classify { file }) => {
            let profile = ScannerProfile::load(&cli.profile)?;
            let lut = MaterialLut::for_profile(&profile)?;
            let input: Box<dyn Read> = match &file {
                Some(p) => {
                    Box::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?)
                }
                None => Box::new(std::io::stdin().lock()),
            };
            let stdout = std::io::stdout().lock();
            classify_csv(input, stdout, &lut)
        }
        Some(Command::Render {
            synthetic,
            item,
            truth,
            raw,
            preset,
            settings,
            vde_phase,
            out,
            tiff_out,
            cpu,
            tip,
            tip_seed,
        }) => {
            let profile = ScannerProfile::load(&cli.profile)?;
            let mut view = match settings {
                Some(p) => serde_json::from_str::<ViewSettings>(
                    &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
                )
                .with_context(|| format!("{}: not valid view settings", p.display()))?,
                None => preset.settings(),
            };
            if let Some(v) = &mut view.vde {
                v.phase = vde_phase;
            }
            if out.is_none() && tiff_out.is_none() && truth.is_none() {
                bail!("nothing to do: give --out FILE.png, --tiff-out FILE.tiff and/or --truth FILE.json");
            }
            let (frame, calib, missing) = match (synthetic, raw) {
                (Some(seed), None) => {
                    let bag = match &item {
                        None => generate_bag(seed, &profile),
                        Some(name) => {
                            let kind = crate::domain::synth::Kind::parse(name).with_context(|| {
                                let all: Vec<&str> =
                                    crate::domain::synth::Kind::CONTENTS.iter().map(|k| k.name()).collect();
                                format!("no item {name:?} in the library ({})", all.join(", "))
                            })?;
                            crate::domain::synth::single_item(kind, seed, &profile)
                        }
                    };
                    if let Some(path) = &truth {
                        let json = serde_json::to_vec_pretty(&bag.truth(&profile))?;
                        crate::files::io::write_atomically(path, &json)
                            .with_context(|| format!("writing {}", path.display()))?;
                    }
                    if out.is_none() && tiff_out.is_none() {
                        return Ok(());
                    }
                    let (f, c) = scan_bag_synthetic(&profile, seed, &bag)?;
                    (f, c, Vec::new())
                }
                (None, Some(path)) => {
                    let (f, c) = load_raw(&path, &profile)?;
                    let missing = missing_rows(&path, f.lines())?;
                    (f, c, missing)
                }
                _ => bail!("give --synthetic SEED or --raw FILE.tiff"),
            };
            let mut frame = frame;
            if let Some(name) = &tip {
                use crate::domain::tip;
                let mut threats = tip::builtin_threats(&profile)?;
                if let Ok(dir) = archive::data_dir(cli.data.as_deref()) {
                    threats.extend(crate::files::io::load_threats(&dir.join(crate::files::io::THREATS_DIR))?);
                }
                let names: Vec<&str> = threats.iter().map(|t| t.name.as_str()).collect();
                let t = threats
                    .iter()
                    .find(|t| t.name == *name)
                    .with_context(|| format!("no threat {name:?} in the library ({})", names.join(", ")))?;
                let mut rng = crate::domain::rng::Rng::new(tip_seed);
                let (l, c) = tip::find_placement(&frame, &calib, t, &mut rng)
                    .with_context(|| format!("no place inside this bag fits the {name}"))?;
                tip::Projector::new(&profile)?.project(&mut frame, &calib, t, l, c);
                eprintln!("projected the {name} at line {l}, channel {c} ({} x {})", t.lines(), t.channels());
            }
            if let Some(t) = &tiff_out {
                save_raw(t, &frame, &calib, &profile)?;
                eprintln!(
                    "wrote {} ({} lines x {} channels, 2 pages)",
                    t.display(),
                    frame.lines(),
                    frame.channels()
                );
            }
            if let Some(out) = &out {
                let rgba = render_rgba(&profile, &frame, &calib, &missing, &view, cpu)?;
                crate::files::io::write_png(out, &rgba)?;
                eprintln!("wrote {} ({} x {})", out.display(), rgba.dim().1, rgba.dim().0);
            }
            Ok(())
        }
    }
}

/// A scan through the display pipeline: the GPU (headless), or its CPU twin.
pub(crate) fn render_rgba(
    profile: &ScannerProfile,
    frame: &RawFrame,
    calib: &Calibration,
    missing: &[bool],
    view: &ViewSettings,
    cpu: bool,
) -> anyhow::Result<ndarray::Array3<u8>> {
    if cpu {
        return Ok(crate::files::export::render_cpu(profile, frame, calib, missing, view)?);
    }
    let lut = MaterialLut::for_profile(profile)?;
    let ctx = gpu::GpuContext::headless()?;
    let kernels = gpu::Kernels::new(&ctx.device);
    Ok(gpu::render_frame(&ctx.device, &ctx.queue, &kernels, gpu::Scan { frame, calib, missing }, &lut, view)?)
}

/// Calibrate a synthetic scanner and scan the bag of `seed`.
pub fn scan_synthetic(profile: &ScannerProfile, seed: u64) -> anyhow::Result<(RawFrame, Calibration)> {
    scan_bag_synthetic(profile, seed, &generate_bag(seed, profile))
}

/// Calibrate a synthetic scanner (noise from `seed`) and scan `bag`.
pub fn scan_bag_synthetic(
    profile: &ScannerProfile,
    seed: u64,
    bag: &crate::domain::synth::Bag,
) -> anyhow::Result<(RawFrame, Calibration)> {
    let mut scanner = SyntheticScanner::new(profile, seed)?;
    let (dark, air) = scanner.calibration_lines(crate::source::CALIBRATION_LINES);
    let calib = Calibration::from_lines(
        &dark.iter().collect::<Vec<_>>(),
        &air.iter().collect::<Vec<_>>(),
        profile.full_scale(),
    )?;
    Ok((scanner.scan_bag(bag), calib))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CalibFile {
    profile: String,
    dark_low: Vec<f32>,
    dark_high: Vec<f32>,
    air_low: Vec<f32>,
    air_high: Vec<f32>,
}

fn calib_path(tiff: &Path) -> PathBuf {
    let mut s = tiff.as_os_str().to_owned();
    s.push(".calib.json");
    PathBuf::from(s)
}

fn save_raw(
    path: &Path,
    frame: &RawFrame,
    calib: &Calibration,
    profile: &ScannerProfile,
) -> anyhow::Result<()> {
    crate::files::io::write_raw_tiff(path, frame, &format!("twinspect raw scan; profile={}", profile.name))?;
    let c = CalibFile {
        profile: profile.name.clone(),
        dark_low: calib.dark_low.clone(),
        dark_high: calib.dark_high.clone(),
        air_low: calib.air_low.clone(),
        air_high: calib.air_high.clone(),
    };
    crate::files::io::write_atomically(&calib_path(path), &serde_json::to_vec(&c)?)?;
    Ok(())
}

/// Lost lines of a captured bag, from the `bag-NNNNNN.json` that `capture` writes beside its
/// TIFF (none when there is no such file): shown hatched, never as image.
fn missing_rows(tiff: &Path, lines: usize) -> anyhow::Result<Vec<bool>> {
    #[derive(serde::Deserialize)]
    struct Meta {
        missing_rows: Vec<usize>,
    }
    let meta = tiff.with_extension("json");
    let Ok(text) = std::fs::read_to_string(&meta) else { return Ok(Vec::new()) };
    let m: Meta =
        serde_json::from_str(&text).with_context(|| format!("{}: not a capture record", meta.display()))?;
    let mut flags = vec![false; lines];
    for r in m.missing_rows {
        *flags
            .get_mut(r)
            .with_context(|| format!("{}: missing row {r} is past the scan's end", meta.display()))? = true;
    }
    Ok(flags)
}

fn load_raw(path: &Path, profile: &ScannerProfile) -> anyhow::Result<(RawFrame, Calibration)> {
    let frame = crate::files::io::read_raw_tiff(path)?;
    let cp = calib_path(path);
    let text = std::fs::read_to_string(&cp)
        .with_context(|| format!("reading the scan's calibration {}", cp.display()))?;
    let c: CalibFile =
        serde_json::from_str(&text).with_context(|| format!("{}: not a calibration file", cp.display()))?;
    let n = frame.channels();
    if [&c.dark_low, &c.dark_high, &c.air_low, &c.air_high].iter().any(|v| v.len() != n) {
        bail!("{}: calibration is for a different number of channels than the scan ({n})", cp.display());
    }
    let calib =
        Calibration::from_tables(c.dark_low, c.dark_high, c.air_low, c.air_high, profile.full_scale())
            .with_context(|| format!("{}", cp.display()))?;
    Ok((frame, calib))
}

/// The `classify` filter: every input column, then `zeff` and `class`.
pub fn classify_csv(input: impl Read, output: impl Write, lut: &MaterialLut) -> anyhow::Result<()> {
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = rdr.headers().context("reading the CSV header")?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h.trim() == name).with_context(|| {
            format!(
                "input has no `{name}` column (columns: {})",
                headers.iter().collect::<Vec<_>>().join(",")
            )
        })
    };
    let (i_lo, i_hi) = (col("log_att_low")?, col("log_att_high")?);
    let mut wtr = csv::Writer::from_writer(output);
    let mut out_headers = headers.clone();
    out_headers.push_field("zeff");
    out_headers.push_field("class");
    wtr.write_record(&out_headers)?;
    for (n, rec) in rdr.records().enumerate() {
        let row = n + 2;
        let rec = rec.with_context(|| format!("CSV row {row}"))?;
        let num = |i: usize, name: &str| -> anyhow::Result<f32> {
            let s = rec.get(i).unwrap_or("").trim();
            let v: f32 = s.parse().with_context(|| format!("row {row}: {name} {s:?} is not a number"))?;
            if !v.is_finite() {
                bail!("row {row}: {name} {s:?} is not finite");
            }
            Ok(v)
        };
        let (lo, hi) = (num(i_lo, "log_att_low")?, num(i_hi, "log_att_high")?);
        let c = lut.classify(lo, hi);
        let mut out = rec.clone();
        out.push_field(&format!("{:.2}", c.zeff));
        out.push_field(c.class.as_str());
        wtr.write_record(&out)?;
    }
    wtr.flush()?;
    Ok(())
}

use crate::unix_ms as now_ms;

/// Read an accounts file; a missing file is an empty store.
pub fn load_operators(path: &Path) -> anyhow::Result<OperatorStore> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| format!("{}: not an operators file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OperatorStore::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Write an accounts file atomically (temporary file, then rename), so a crash or a full disk
/// never leaves a half-written file in place of the accounts.
pub fn save_operators(path: &Path, store: &OperatorStore) -> anyhow::Result<()> {
    let text = toml::to_string(store)?;
    let tmp = path.with_extension("toml.tmp");
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(text.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// A change of the accounts is a configuration change: audited in the archive at `data` (the
/// default data directory without `--data`) when there is one, said plainly when there is not.
fn audit_config(data: Option<&Path>, change: &str, id: &str, file: &Path, extra: serde_json::Value) {
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let detail = serde_json::json!({ "change": change, "id": id, "file": file.display().to_string(), "detail": extra });
    let r = archive::data_dir(data)
        .map_err(|e| e.to_string())
        .and_then(|d| crate::files::store::Store::open_shared(&d).map_err(|e| e.to_string()))
        .and_then(|mut s| {
            s.log(now_ms(), &actor, "config.operators", None, detail).map_err(|e| e.to_string())
        });
    if let Err(e) = r {
        eprintln!("note: this change is not in an audit trail ({e})");
    }
}

fn operators_command(data: Option<&Path>, file: &Path, action: OperatorAction) -> anyhow::Result<()> {
    let mut store = load_operators(file)?;
    match action {
        OperatorAction::Add { id, name, roles } => {
            let roles: Vec<Role> = roles
                .iter()
                .map(|r| {
                    Role::parse(r).with_context(|| {
                        format!("unknown role {r:?} (customs, quarantine, supervisor, trainer, admin)")
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let mut pin = String::new();
            std::io::stdin().read_line(&mut pin).context("reading the PIN from standard input")?;
            store.add(&id, &name, &roles, pin.trim(), now_ms())?;
            save_operators(file, &store)?;
            eprintln!("added {id}");
            let roles: Vec<String> = roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
            audit_config(data, "add", &id, file, serde_json::json!({ "name": name, "roles": roles }));
        }
        OperatorAction::List => {
            for r in store.records() {
                let roles: Vec<String> = r.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
                println!(
                    "{}\t{}\t{}{}",
                    r.id,
                    r.name,
                    roles.join(","),
                    if r.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        OperatorAction::Remove { id } => {
            store.remove(&id, now_ms())?;
            save_operators(file, &store)?;
            audit_config(data, "remove", &id, file, serde_json::Value::Null);
        }
        OperatorAction::Disable { id } => {
            store.set_disabled(&id, true, now_ms())?;
            save_operators(file, &store)?;
            audit_config(data, "disable", &id, file, serde_json::Value::Null);
        }
        OperatorAction::Enable { id } => {
            store.set_disabled(&id, false, now_ms())?;
            save_operators(file, &store)?;
            audit_config(data, "enable", &id, file, serde_json::Value::Null);
        }
    }
    Ok(())
}

/// `run --hub`: the workstation's screens as stations of a hub (central screening).
#[derive(clap::Args, Debug, Default)]
pub struct HubStationArgs {
    /// Screen the hub's bags (central screening, 集中判图): each screen takes its agency's next
    /// bag from the hub while an operator is logged in there, and the agency's decision goes back
    /// to the hub (`nats://HOST:PORT[,HOST:PORT...]`). Without --source the workstation has no
    /// scanner of its own.
    #[arg(long, value_name = "URL")]
    hub: Option<String>,
    /// With --hub: also write each decision to the hub's records (PostgreSQL URL).
    #[arg(long, value_name = "URL", requires = "hub")]
    records: Option<String>,
    /// With --hub: this workstation's name on the hub; each screen is the station
    /// NAME-SCREEN (default: the host's name).
    #[arg(long, value_name = "NAME", requires = "hub")]
    station: Option<String>,
    /// With --hub: a bag neither decided nor held this long goes to another station.
    #[arg(long, default_value_t = 30.0, requires = "hub")]
    hold_seconds: f64,
    /// With --hub: a bag undecided this long on a screen goes back to the hub for another
    /// station (the screen closes it).
    #[arg(long, default_value_t = 300.0, requires = "hub")]
    screen_seconds: f64,
    /// With --hub, at a hub that uses keys: the folder of each screen's station key
    /// (`NAME-SCREEN.nk`, made by `twinspect hub key`; its public key in the hub's users file as
    /// that station of the screen's agency).
    #[arg(long, value_name = "DIR", requires = "hub")]
    keys: Option<PathBuf>,
    /// With --hub: this desk's own scanner's bags go to the hub as those of a node of line LINE
    /// (the node's name is --station's), each once, the archive being the outbox; its screens
    /// screen them here, and each of their agencies' decisions goes to the hub too (a station
    /// of the agency on the hub lets them pass). The screens take no other scanner's bags. At a
    /// hub that uses keys, --keys holds NAME.nk (the node) beside the screens' keys.
    #[arg(long, value_name = "LINE", requires = "hub")]
    publish: Option<String>,
}

impl HubStationArgs {
    /// The link's settings for the site's screens (back-office screens work from the archive
    /// only and take no bags).
    fn link(
        &self,
        inspection: &crate::domain::inspection::InspectionConfig,
    ) -> anyhow::Result<Option<crate::hub::screening::LinkConfig>> {
        let Some(url) = &self.hub else { return Ok(None) };
        if self.publish.is_some() {
            return Ok(None);
        }
        anyhow::ensure!(
            (0.5..=3600.0).contains(&self.hold_seconds),
            "--hold-seconds {}: from 0.5 to 3600",
            self.hold_seconds
        );
        anyhow::ensure!(
            (1.0..=86_400.0).contains(&self.screen_seconds),
            "--screen-seconds {}: from 1 to 86400",
            self.screen_seconds
        );
        let name = self.name();
        let screens = inspection
            .screens()
            .into_iter()
            .zip(inspection.screen_ids())
            .enumerate()
            .filter(|(_, (s, _))| !s.back_office)
            .map(|(i, (s, id))| {
                let station = format!("{name}-{id}");
                crate::hub::check_name("station", &station)
                    .map_err(|e| anyhow::anyhow!("--station {name}: {e}"))?;
                let credentials = self.key(&station)?;
                let automatic = crate::hub::station::Automatic::for_agency(inspection, &s.agency);
                Ok(crate::hub::screening::ScreenSpec {
                    screen: i,
                    agency: s.agency,
                    station,
                    credentials,
                    automatic,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(crate::hub::screening::LinkConfig {
            hub: crate::hub::HubUrl::parse(url)?,
            screens,
            records: self.records.clone(),
            hold: std::time::Duration::from_secs_f64(self.hold_seconds),
            limit: std::time::Duration::from_secs_f64(self.screen_seconds),
            replicas: 1,
        }))
    }
}

impl HubStationArgs {
    /// This workstation's name on the hub.
    fn name(&self) -> String {
        match &self.station {
            Some(n) => n.clone(),
            None => std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect())
                .filter(|h: &String| !h.is_empty() && h.len() <= 40)
                .unwrap_or_else(|| "desk".into()),
        }
    }

    /// The key of `who` (a station or this desk's node) in --keys, when the hub uses keys.
    fn key(&self, who: &str) -> anyhow::Result<Option<crate::hub::access::Credentials>> {
        match &self.keys {
            Some(dir) => Ok(Some(crate::hub::access::Credentials::load(&dir.join(format!("{who}.nk")))?)),
            None => Ok(None),
        }
    }

    /// `--publish LINE`: the desk's publisher, its own bags going to the hub as node NAME of LINE
    /// and the decisions of the agencies at its screens with them.
    fn publishing(
        &self,
        inspection: &crate::domain::inspection::InspectionConfig,
    ) -> anyhow::Result<Option<crate::hub::publish::Config>> {
        let (Some(url), Some(line)) = (&self.hub, &self.publish) else { return Ok(None) };
        let node = self.name();
        crate::hub::check_name("line", line).map_err(|e| anyhow::anyhow!("--publish: {e}"))?;
        crate::hub::check_name("node", &node).map_err(|e| anyhow::anyhow!("--station: {e}"))?;
        if let Some(r) = &self.records {
            anyhow::ensure!(
                r.starts_with("postgres://") || r.starts_with("postgresql://"),
                "--records {r:?}: expected postgres://USER@HOST:PORT/DATABASE"
            );
        }
        // Every agency of the site screens at the desk (each has a screen there, front or back
        // office), as the station of its first live screen (or its back office's).
        let mut screens: Vec<_> = inspection.screens().into_iter().zip(inspection.screen_ids()).collect();
        screens.sort_by_key(|(s, _)| s.back_office);
        let mut desk: Vec<crate::hub::publish::DeskScreen> = Vec::new();
        for (s, id) in screens {
            if desk.iter().any(|d| d.agency == s.agency) {
                continue;
            }
            let station = format!("{node}-{id}");
            crate::hub::check_name("station", &station)
                .map_err(|e| anyhow::anyhow!("--station {node}: {e}"))?;
            crate::hub::check_name("agency", &s.agency)?;
            let credentials = self.key(&station)?;
            desk.push(crate::hub::publish::DeskScreen { agency: s.agency, station, credentials });
        }
        Ok(Some(crate::hub::publish::Config {
            hub: crate::hub::HubUrl::parse(url)?,
            line: line.clone(),
            node: node.clone(),
            replicas: 1,
            keep: std::time::Duration::from_secs(72 * 3600),
            records: self.records.clone(),
            credentials: self.key(&node)?,
            site: Some(inspection.clone()),
            barcode: None,
            desk,
        }))
    }
}

/// How long a publishing desk that closes goes on sending what waits (the rest goes next run).
const PUBLISH_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The files a workstation is set up from (each optional).
#[derive(Clone, Copy, Default)]
struct WorkstationFiles<'a> {
    operators: Option<&'a Path>,
    layout: Option<&'a Path>,
    site: Option<&'a Path>,
}

/// The site's agencies and policy: from its file, or customs and quarantine.
/// The accounts an opening bench served on its own takes: the file's (none in it is refused),
/// or the demonstration ones (`true`).
pub(crate) fn web_accounts(
    path: Option<&Path>,
) -> anyhow::Result<(crate::domain::operators::OperatorStore, bool)> {
    Ok(match path {
        Some(path) => {
            let store = load_operators(path)?;
            if store.records().next().is_none() {
                bail!("{} has no operator accounts: add some with `twinspect operators`", path.display());
            }
            (store, false)
        }
        None => (crate::desk::Desk::demo_operators(), true),
    })
}

pub(crate) fn load_site(site: Option<&Path>) -> anyhow::Result<crate::domain::inspection::InspectionConfig> {
    let Some(path) = site else { return Ok(crate::domain::inspection::InspectionConfig::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    crate::domain::inspection::InspectionConfig::from_toml(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[allow(clippy::too_many_arguments)]
fn run_workstation(
    profile: &str,
    seed: u64,
    files: WorkstationFiles<'_>,
    source: Option<&str>,
    data: Option<&Path>,
    record: Option<&Path>,
    web: Option<(std::net::SocketAddr, Option<(PathBuf, PathBuf)>)>,
    hub: &HubStationArgs,
) -> anyhow::Result<()> {
    let url = match source {
        Some(s) => crate::source::url::SourceUrl::parse(s)?,
        // A central screening room has no scanner: the emulator calibrates and stays silent.
        None if hub.hub.is_some() && hub.publish.is_none() => {
            crate::source::url::SourceUrl::parse("synthetic://?bags=0")?
        }
        None => crate::source::url::SourceUrl::parse(&format!("synthetic://?seed={seed}"))?,
    };
    let data = archive::data_dir(data)?;
    let site = load_site(files.site)?;
    let link = hub.link(&site)?;
    let publish = hub.publishing(&site)?;
    let no_scanner = source.is_none() && hub.hub.is_some() && publish.is_none();
    let hubs = HubParts { link, publish, no_scanner };
    let (mut parts, publisher) = workstation_parts(profile, &url, files, &data, record, hubs)?;
    // The opening bench beside the screens: the same desk, stepped by the window's frame loop.
    let web = match web {
        Some((listen, tls)) => {
            let (link, host) = crate::desk::host::channel();
            parts.remote = Some(host);
            let opts = crate::web::Options {
                listen,
                data: data.clone(),
                profile: parts.profile.clone(),
                config: parts.inspection.clone(),
                cpu: false,
                tls,
            };
            let scheme = if opts.tls.is_some() { "https" } else { "http" };
            Some(crate::web::beside(&opts, link, |addr| {
                println!("opening bench on {scheme}://{addr}/");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            })?)
        }
        None => None,
    };
    let first = parts.inspection.screens().into_iter().next().context("no screens")?;
    let agency = parts.inspection.agency(&first.agency).context("the first screen's agency")?;
    let title = crate::ui::station_title(agency, &first);
    eframe::run_native(
        "twinspect",
        crate::ui::native_options(&title, &parts.layout.placement(0)),
        Box::new(move |cc| Ok(Box::new(crate::ui::Workstation::for_window(cc, parts)))),
    )
    .map_err(|e| anyhow::anyhow!("window: {e}"))?;
    if let Some(w) = web {
        w.stop()?;
    }
    finish_publishing(publisher)
}

/// A publishing desk that closes: what waits goes for a few seconds more, and what it did is said.
fn finish_publishing(publisher: Option<crate::hub::publish::Publisher>) -> anyhow::Result<()> {
    let Some(p) = publisher else { return Ok(()) };
    let r = p.finish(PUBLISH_DRAIN)?;
    println!("bags published to the hub: {}", r.published);
    println!("bags found on the hub already: {}", r.found_on_broker);
    println!("decisions sent to the hub: {}", r.decisions_sent);
    println!("waiting in the archive for the next run: {}", r.waiting);
    Ok(())
}

struct SnapshotArgs {
    out: PathBuf,
    synthetic: u64,
    source: Option<String>,
    script: Option<PathBuf>,
    bags: u64,
    size: String,
    operators: Option<PathBuf>,
    site: Option<PathBuf>,
    data: Option<PathBuf>,
    hub: HubStationArgs,
}

fn snapshot(profile: &str, a: SnapshotArgs) -> anyhow::Result<()> {
    let size = a
        .size
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some([w.parse::<f32>().ok()?, h.parse::<f32>().ok()?]))
        .filter(|[w, h]| (320.0..=7680.0).contains(w) && (240.0..=4320.0).contains(h))
        .with_context(|| format!("--size {}: WIDTHxHEIGHT, 320x240 to 7680x4320", a.size))?;
    let inspection = load_site(a.site.as_deref())?;
    let agencies: Vec<String> = inspection.screen_ids();
    // The whole script is read and checked before anything starts.
    let script = match &a.script {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            crate::ui::snapshot::Script::parse(&text, &agencies).with_context(|| p.display().to_string())?
        }
        None => crate::ui::snapshot::Script::default(),
    };
    // The emulator delivers just the bags waited for, faster than real time: a still scene.
    // Screening a hub's bags, it has none of its own.
    let hub_bags = a.hub.hub.is_some() && a.source.is_none() && a.hub.publish.is_none();
    let url = match &a.source {
        Some(s) => crate::source::url::SourceUrl::parse(s)?,
        None if hub_bags => crate::source::url::SourceUrl::parse("synthetic://?bags=0")?,
        None => crate::source::url::SourceUrl::parse(&format!(
            "synthetic://?seed={}&bags={}&speed=2",
            a.synthetic, a.bags
        ))?,
    };
    // Decisions and marks are recorded: in --data when given, else in a scratch archive that
    // goes with the snapshot.
    let scratch = match &a.data {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("a scratch archive")?),
    };
    let data =
        a.data.clone().or_else(|| scratch.as_ref().map(|d| d.path().to_path_buf())).expect("one of them");
    let files = WorkstationFiles { operators: a.operators.as_deref(), layout: None, site: a.site.as_deref() };
    let hubs = HubParts {
        link: a.hub.link(&inspection)?,
        publish: a.hub.publishing(&inspection)?,
        no_scanner: hub_bags,
    };
    let (parts, publisher) = workstation_parts(profile, &url, files, &data, None, hubs)?;
    let opts = crate::ui::snapshot::SnapshotOptions {
        out: a.out.clone(),
        size,
        bags: if hub_bags { 0 } else { a.bags },
        timeout: std::time::Duration::from_secs(120),
    };
    let report = crate::ui::snapshot::run(parts, &script, &opts);
    // What the desk decided reaches the hub even when the snapshot failed.
    finish_publishing(publisher)?;
    let report = report?;
    for w in &report.warnings {
        eprintln!("snapshot: {w}");
    }
    for f in &report.files {
        println!("{}", f.display());
    }
    Ok(())
}

/// A workstation's part in a hub: its screens as stations (`link`), or its own bags published
/// (`publish`), or neither.
struct HubParts {
    link: Option<crate::hub::screening::LinkConfig>,
    publish: Option<crate::hub::publish::Config>,
    no_scanner: bool,
}

/// The source, accounts, layout and archive of a workstation (the window's or a snapshot's),
/// and its publisher when it publishes to a hub.
fn workstation_parts(
    profile: &str,
    url: &crate::source::url::SourceUrl,
    files: WorkstationFiles<'_>,
    data: &Path,
    record: Option<&Path>,
    hubs: HubParts,
) -> anyhow::Result<(crate::ui::Parts, Option<crate::hub::publish::Publisher>)> {
    let HubParts { link: hub, publish, no_scanner } = hubs;
    // A replay's bags were scanned before (and with projected threats it is a training session):
    // only a scanner's new bags go to the hub.
    anyhow::ensure!(
        !(url.scheme == "replay" && publish.is_some()),
        "--publish: a replay publishes nothing to the hub (its bags were scanned before; with \
         projected threats it is a training session): publish from the scanner (--source)"
    );
    let WorkstationFiles { operators, layout, site } = files;
    let profile = ScannerProfile::load(url.get_str("profile").unwrap_or(profile))?;
    let lut = MaterialLut::for_profile(&profile)?;
    let inspection = load_site(site)?;
    let mut source = crate::source::open(url, &profile)?;
    if let Some(r) = record {
        source = crate::source::replay::record(source, r, &profile.name, profile.channels as usize)?;
    }
    let layout = match layout {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            crate::ui::layout::Layout::from_toml(&text, inspection.screens().len())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => crate::ui::layout::Layout::side_by_side(inspection.screens().len(), 1920.0, 1000.0),
    };
    // Without an accounts file the emulator runs with two demonstration accounts (shown as such).
    let desk = match operators {
        Some(path) => {
            let store = load_operators(path)?;
            if store.records().next().is_none() {
                bail!("{} has no operator accounts: add some with `twinspect operators`", path.display());
            }
            crate::desk::Desk::new(inspection.clone(), store, false)
        }
        None => crate::desk::Desk::new(inspection.clone(), crate::desk::Desk::demo_operators(), true),
    };
    // A replay with projected threats is a training session: decisions are judged.
    let mut desk = desk;
    desk.training = url.scheme == "replay" && url.get("tip", 0.0f64).is_ok_and(|r| r > 0.0);
    // The archive: a problem opening it (a full disk, a read-only directory) is shown on both
    // screens and the live image goes on; records then say they were not recorded.
    // With a hub, the link takes the hub's bags into the archive through a writer of its own.
    let mut link_store = None;
    let mut publish_store = None;
    let opened = crate::files::store::Store::open(data).and_then(|store| {
        if hub.is_some() {
            link_store = Some(store.second_writer()?);
        }
        if publish.is_some() {
            publish_store = Some(store.second_writer()?);
        }
        crate::desk::archiver::Archiver::over(
            store,
            &source.description,
            &profile.name,
            profile.channels as usize,
        )
    });
    match opened {
        Ok(mut a) => {
            for id in &a.recovered {
                eprintln!(
                    "archive: bag {id} was left half captured when the last run stopped (crash or kill); kept, flagged partial"
                );
            }
            a.log("system", "workstation.start", serde_json::json!({ "source": source.description }));
            eprintln!("archive: {}", data.display());
            desk.archive = Some(a);
            match desk.load_earlier(crate::desk::EARLIER_BAGS) {
                Ok(n) => eprintln!("archive: {n} bags of earlier runs recalled"),
                // The archive is open and takes records; failing to read back earlier bags is
                // its problem to show, not a failed open (which would refuse every decision).
                Err(e) => {
                    if let Some(a) = desk.archive.as_mut() {
                        a.problem = Some(format!("recalling earlier bags: {e}"));
                    }
                }
            }
        }
        Err(e) => {
            eprintln!("archive: {e}; the workstation runs without archiving");
            desk.archive_open_error = Some(e.to_string());
        }
    }
    let hub = match (hub, link_store) {
        (Some(cfg), Some(store)) => {
            eprintln!("hub: screening for {} screens on {}", cfg.screens.len(), cfg.hub.servers.join(","));
            Some(crate::hub::screening::HubLink::start(cfg, &store)?)
        }
        (Some(_), None) => bail!("--hub: the hub's bags need the archive, which did not open (above)"),
        (None, _) => None,
    };
    let (publisher, publishing) = match (publish, publish_store) {
        (Some(cfg), Some(store)) => {
            eprintln!(
                "hub: publishing this desk's bags as {}/{} to {} (screened here: {})",
                cfg.line,
                cfg.node,
                cfg.hub.servers.join(","),
                cfg.desk.iter().map(|d| d.agency.as_str()).collect::<Vec<_>>().join(", ")
            );
            let (line, node) = (cfg.line.clone(), cfg.node.clone());
            let p = crate::hub::publish::Publisher::start(cfg, store)?;
            let progress = p.progress.clone();
            (Some(p), Some(crate::ui::Publishing { line, node, progress }))
        }
        (Some(_), None) => bail!("--publish: the archive is the outbox, and it did not open (above)"),
        (None, _) => (None, None),
    };
    let parts = crate::ui::Parts {
        profile,
        source,
        lut,
        inspection,
        desk,
        layout,
        remote: None,
        hub,
        no_scanner,
        publishing,
    };
    Ok((parts, publisher))
}

/// `twinspect manpage --out DIR`: twinspect.1 and twinspect-SUB.1 for every subcommand (and
/// twinspect-SUB-SUBSUB.1 below it), from the definitions the binary parses with.
fn manpages(out: &Path) -> anyhow::Result<()> {
    fn write(cmd: &clap::Command, name: &str, out: &Path) -> anyhow::Result<()> {
        let cmd = cmd.clone().name(name.to_owned());
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
        let path = out.join(format!("{name}.1"));
        std::fs::write(&path, buf).with_context(|| path.display().to_string())?;
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            write(sub, &format!("{name}-{}", sub.get_name()), out)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    write(&cmd, "twinspect", out)?;
    println!("man pages in {}", out.display());
    Ok(())
}
