fn main() {
    let cli = match cargo_lambda_pack::cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    std::process::exit(cargo_lambda_pack::run(cli));
}
