//! `uniffi-bindgen generate --library <lib> --language kotlin|swift --out-dir <dir>`: the generator
//! built from the same uniffi version as the library, so bindings and scaffolding always match.

fn main() {
    uniffi::uniffi_bindgen_main()
}
