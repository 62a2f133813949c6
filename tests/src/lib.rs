//! End-to-end tests of Microcohort across process boundaries. The tests live in `tests/`; the
//! helper programs they drive live in `src/bin/`.
