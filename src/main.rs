//! The `hedui` binary: parse arguments, run, print any error once, exit 0/1/2.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match hedui::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                // --help, --version.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // The headline every refused command line gets, then clap's own words.
            eprintln!("hedui: 命令参数有误，请用 --help 查看用法（invalid arguments; see --help）");
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    // HEDUI_LOG as RUST_LOG (`info`, `hedui=debug`, …); by default errors, and the
    // server's one line per request and per job.
    let filter = match std::env::var("HEDUI_LOG") {
        Ok(v) if !v.trim().is_empty() => tracing_subscriber::EnvFilter::new(v),
        _ => tracing_subscriber::EnvFilter::new("error,hedui::server=info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only: logs kept in files or journals stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match hedui::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The one place errors are printed: any ID number a department, a store or
            // a file put into the message is masked (SPEC §7).
            eprintln!("hedui: {}", e.user_message());
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
