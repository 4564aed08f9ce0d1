//! The `spoke` binary: parses the command line, runs the library, maps the outcome to an exit code.

use clap::Parser;

// glibc's malloc makes the mock partner's worker threads wait on each other's arena locks
// when one thread frees what another allocated; mimalloc's per-thread heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = spoke::cli::Cli::parse();
    let code = match spoke::cli::run(cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            failure.code
        }
    };
    std::process::exit(code);
}
