//! The real `microcohort-server` command line, built inside this package so the end-to-end tests
//! can start, kill and restart it as a process.

fn main() {
    microcohort_server::cli::main();
}
