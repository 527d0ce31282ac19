fn main() {
    // A file-size limit (`ulimit -f`) should surface as a write error we can report and clean up
    // after, not as SIGXFSZ killing the process mid-write.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts is sound.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    if let Some(code) = cargo_lambda_pack::run_as_rustc_wrapper() {
        std::process::exit(code);
    }
    let cli = match cargo_lambda_pack::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    std::process::exit(cargo_lambda_pack::run(cli));
}
