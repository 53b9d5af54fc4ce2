use std::process::ExitCode;

use clap::Parser;

/// See the comment on `mimalloc` in Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = liftoff::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(liftoff::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            liftoff::printer::print_error(&err);
            ExitCode::FAILURE
        }
    }
}
