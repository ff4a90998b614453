//! The `kernel-sync` binary: parse the command line, start logging, run one command, and map
//! its result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use kernel_sync::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::logging::init(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::Exit::Internal.code());
        }
    };
    let exit = runtime.block_on(cli::run(cli));
    ExitCode::from(exit.code())
}
