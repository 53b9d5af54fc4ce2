//! The `liftoff` binary: the command line ([`cli`]), one thin command per subcommand
//! ([`commands`]: arguments → options → `liftoff::ops` → printer), the allocator and the
//! async runtime.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// See the comment on `mimalloc` in Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (the Rust bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Peak memory must not grow with the image: give freed pages back to the system at once
    // (mimalloc otherwise keeps them for a while, per thread), see Cargo.toml.
    // SAFETY: sets one option of the allocator; no pointer is passed, any value is valid.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0)
    };
    let cli = cli::Cli::parse();
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
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            liftoff::printer::print_error(&err);
            ExitCode::FAILURE
        }
    }
}
