//! The `twinspect` binary: the workstation (no subcommand) and the headless commands.

use clap::Parser;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = twinspect::cli::Cli::parse();
    match twinspect::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twinspect: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
