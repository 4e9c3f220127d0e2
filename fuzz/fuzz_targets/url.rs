//! Fuzzes `DatabaseUrl::parse` and `redact`, with every backend reading
//! the URLs it claims: no input may panic, and a
//! password marked `Zq...Xv` inside a URL-shaped input never shows.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run url -- -max_total_time=60`
//! (cargo-fuzz needs nightly flags; the bootstrap variable allows them on
//! the stable toolchain this project uses).
#![no_main]

use dbinit_core::{redact, DatabaseUrl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every backend reads its own URL forms: link them all.
    dbinit_sqlite::link();
    dbinit_postgres::link();
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let shown = match DatabaseUrl::parse(input) {
        Ok(url) => format!("{url} {url:?} {}", url.scheme()),
        Err(e) => e.to_string(),
    };
    let redacted = redact(input);
    // Wrap the input as a password: whatever it is, it must not show.
    let secret = format!("Zq{}Xv", input.replace(['Z', 'X'], ""));
    let encoded: String = secret
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    for wrapped in [
        format!("postgres://user:{encoded}@host/db"),
        format!("postgres://user@host/db?password={encoded}"),
        format!("host=h password='{}'", secret.replace('\\', "\\\\").replace('\'', "\\'")),
    ] {
        let out = match DatabaseUrl::parse(&wrapped) {
            Ok(url) => format!("{url} {url:?} {}", url.scheme()),
            Err(e) => e.to_string(),
        };
        assert!(!out.contains("Zq") && !out.contains("Xv"), "{wrapped} -> {out}");
        let loose = redact(&wrapped);
        assert!(!loose.contains("Zq") && !loose.contains("Xv"), "{wrapped} -> {loose}");
    }
    let _ = (shown, redacted);
});
