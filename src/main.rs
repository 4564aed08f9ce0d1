//! The `spoke` binary: parses the command line, runs the library, maps the outcome to an exit code.

use clap::Parser;

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
