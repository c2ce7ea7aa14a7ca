//! End-to-end: the command line (migrate, accounts, zone import/export).

mod common;

use std::process::Command;

use common::*;
use hickory_proto::rr::RecordType;

#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent_and_accounts_print_a_key_once() {
    let db = TestDb::new().await;
    for _ in 0..2 {
        let out = run_cli(&db, &["migrate"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = run_cli(&db, &["accounts", "create", "acme"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert!(json["accountId"].as_str().unwrap().starts_with('A'));
    let key = json["apiKey"].as_str().unwrap();
    assert!(key.starts_with("sp_") && key.len() == 67, "{key}");
    // Only the hash is stored.
    let store = db.store().await;
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_one(store.pool()).await.unwrap();
    assert_eq!(stored, signpost_store::hash_api_key(key));
    assert!(store.api_key_account(key).await.unwrap().is_some());
    let again = run_cli(&db, &["accounts", "create", "acme"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("exists") && !err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn zone_export_passes_named_checkzone_and_reimports_unchanged() {
    let db = TestDb::new().await;
    let file = repo_root().join("zones/example.com.zone");
    let out = run_cli(&db, &["zone", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported example.com."));

    let out = run_cli(&db, &["zone", "export", "EXAMPLE.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let exported = temp_path("example.com.zone");
    std::fs::write(&exported, &text).unwrap();
    if have("named-checkzone") {
        let check = Command::new("named-checkzone")
            .args(["example.com", exported.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "named-checkzone rejected the export:\n{}\n{}",
            String::from_utf8_lossy(&check.stdout),
            text
        );
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must install bind9-utils (named-checkzone)");
    }

    let store = db.store().await;
    let zone = store.zone_by_name("example.com.").await.unwrap().unwrap();
    let before = store.zone_rrsets(&zone.id).await.unwrap();
    let out = run_cli(&db, &["zone", "import", exported.to_str().unwrap(), "--origin", "example.com."]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = store.zone_rrsets(&zone.id).await.unwrap();
    let key = |sets: &[signpost_core::RecordSet]| {
        let mut v: Vec<String> = sets
            .iter()
            .filter(|r| r.rtype != "SOA")
            .map(|r| format!("{} {} {:?} {:?}", r.name, r.rtype, r.ttl, r.records))
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&before), key(&after));
    let serial_after = store.zone_by_id(&zone.id).await.unwrap().unwrap().serial;
    assert!(serial_after > zone.serial, "import is a change: the serial rises");
    let _ = std::fs::remove_file(exported);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_zone_file_is_rejected_and_changes_nothing() {
    let db = TestDb::new().await;
    let good = repo_root().join("zones/example.com.zone");
    assert!(run_cli(&db, &["zone", "import", good.to_str().unwrap()]).status.success());
    let store = db.store().await;
    let zone = store.zone_by_name("example.com.").await.unwrap().unwrap();
    let before = store.zone_rrsets(&zone.id).await.unwrap();

    let bad = temp_path("bad.zone");
    std::fs::write(&bad, "$ORIGIN example.com.\n@ 300 IN A 192.0.2.1\nwww 300 IN A 999.1.1.1\n").unwrap();
    let out = run_cli(&db, &["zone", "import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("999.1.1.1") || err.contains("not a valid zone file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A CNAME beside other data violates a zone rule: refused as a whole.
    std::fs::write(&bad, "$ORIGIN example.com.\nmail 300 IN CNAME www.example.com.\n").unwrap();
    let out = run_cli(&db, &["zone", "import", bad.to_str().unwrap()]);
    // (This file has no A at mail, so it is valid; the rule is checked with a clash.)
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(
        &bad,
        "$ORIGIN example.com.\nmail 300 IN CNAME www.example.com.\nmail 300 IN A 192.0.2.1\n",
    )
    .unwrap();
    let before_clash = store.zone_rrsets(&zone.id).await.unwrap();
    let out = run_cli(&db, &["zone", "import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CNAME"));
    assert_eq!(store.zone_rrsets(&zone.id).await.unwrap(), before_clash, "a rejected import changes nothing");
    assert_ne!(before, before_clash);
    let _ = std::fs::remove_file(bad);
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_only_process_serves_an_imported_zone() {
    let db = TestDb::new().await;
    let file = repo_root().join("zones/shop.example.zone");
    assert!(run_cli(&db, &["zone", "import", file.to_str().unwrap()]).status.success());
    let server = Signpost::dns_only(&db, &["--udp-workers", "1"]);
    let reply = ask(server.dns, "www.shop.example.", RecordType::A);
    assert_eq!(reply.answers.len(), 2);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
}
