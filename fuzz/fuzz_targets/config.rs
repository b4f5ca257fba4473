//! A config file and `TOKEND__…` overlay of the fuzzer's choosing: the text
//! up to the first NUL is the TOML, each later line `NAME=VALUE` an
//! environment variable. Every problem is an error with a key path, never a
//! panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (toml, env) = text.split_once('\0').unwrap_or((&text, ""));
    let vars = env.lines().filter_map(|line| {
        let (name, value) = line.split_once('=')?;
        Some((format!("TOKEND__{name}"), value.to_owned()))
    });
    let _ = tokend::config::Config::from_toml(toml, vars.collect::<Vec<_>>());
});
