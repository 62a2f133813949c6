//! `microcohort-server`: see `cli.rs` for the commands.

fn main() {
    microcohort_server::cli::main();
}
