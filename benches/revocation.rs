//! The revocation check on the request path, with 1,000,000 entries in the
//! local copy: a revoked token (hit) and a token that is not (miss), plus the
//! memory each entry costs.
//!
//! `cargo bench --bench revocation`

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokend::revocation::{Entry, Holder, LocalCopy, TokenId};

const ENTRIES: usize = 1_000_000;
const ISS: &str = "https://idp.example.com/realms/main";

fn bench_revocation(c: &mut Criterion) {
    let now = 1_800_000_000;
    // Entries are built outside the measured memory: only the copy's growth counts.
    let entries: Vec<Entry> = (0..ENTRIES)
        .map(|i| Entry::jti(ISS, &format!("{i:032x}")).with_times(now + 3600, now, "bench"))
        .collect();
    let before = support::rss_bytes();
    let copy = LocalCopy::default();
    for e in &entries {
        copy.apply(e);
    }
    let after = support::rss_bytes();
    assert_eq!(copy.len(), ENTRIES);
    println!(
        "local copy: {ENTRIES} jti entries, {} bytes resident, {:.1} bytes per entry",
        after - before,
        (after - before) as f64 / ENTRIES as f64
    );
    drop(entries);

    let mut group = c.benchmark_group("revocation_check_1m");
    group.throughput(Throughput::Elements(1));
    let hits: Vec<String> = (0..1024).map(|i| format!("{:032x}", i * 977)).collect();
    let misses: Vec<String> = (0..1024).map(|i| format!("not-revoked-{i}")).collect();
    let holder = Holder {
        iss: ISS,
        sub: Some("alice"),
        sid: Some("session-1"),
        iat: Some(1.0),
    };
    for (name, ids, expect) in [("hit", &hits, true), ("miss", &misses, false)] {
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("jti", name), ids, |b, ids| {
            b.iter(|| {
                i = (i + 1) % ids.len();
                let revoked = copy.is_revoked(&holder, TokenId::Jti(&ids[i]), now);
                assert_eq!(revoked, expect);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2));
    targets = bench_revocation
}
criterion_main!(benches);
