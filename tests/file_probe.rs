//! The `file` probe's `max_age` over a glob's newest file: a fresh backup passes, a backup
//! older than `max_age` fails, and no backup at all fails.

mod common;

use common::*;

const BACKUP_ITEM: OneItem = OneItem {
    checklist: "backup test",
    id: "backup",
    section: "Operations",
    title: "Daily backup",
    severity: "blocker",
    timeout: None,
    kind: "file",
};

/// Set `path`'s modification time to `hours` hours ago.
fn age(path: &std::path::Path, hours: i64) {
    let then = jiff::Timestamp::now().as_second() - hours * 3600;
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(then, 0)).unwrap();
}

#[test]
fn the_newest_backup_must_be_younger_than_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let probe = "path = \"backups/db-*.sql.gz\"\nmax_age = \"24h\"\nmin_size = \"1B\"";
    std::fs::create_dir(d.join("backups")).unwrap();
    let (code, o) = run_item(d, &BACKUP_ITEM, probe, &[]);
    assert_eq!(
        (code, o["status"].as_str()),
        (1, Some("fail")),
        "no backup: {o:#}"
    );
    assert_eq!(o["summary"], "no file matches backups/db-*.sql.gz", "{o:#}");

    age(&write(&d.join("backups"), "db-1.sql.gz", "old"), 72);
    age(
        &write(&d.join("backups"), "db-2.sql.gz", "older than a day"),
        30,
    );
    let (code, o) = run_item(d, &BACKUP_ITEM, probe, &[]);
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    let summary = o["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("backups/db-2.sql.gz (newest of backups/db-*.sql.gz): failed age"),
        "{summary}"
    );
    assert!(measured(&o, "age_s") >= 30.0 * 3600.0, "{o:#}");

    age(&write(&d.join("backups"), "db-3.sql.gz", "fresh"), 2);
    let (code, o) = run_item(d, &BACKUP_ITEM, probe, &[]);
    assert_eq!((code, o["status"].as_str()), (0, Some("pass")), "{o:#}");
    assert!(
        o["summary"]
            .as_str()
            .unwrap()
            .starts_with("backups/db-3.sql.gz"),
        "{o:#}"
    );
}

#[test]
fn a_checklist_folder_with_glob_characters_in_its_name_is_taken_literally() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("release [draft]");
    std::fs::create_dir_all(d.join("backups")).unwrap();
    write(&d.join("backups"), "db-1.sql.gz", "fresh");
    let probe = "path = \"backups/db-*.sql.gz\"\nmax_age = \"24h\"";
    let (code, o) = run_item(&d, &BACKUP_ITEM, probe, &[]);
    assert_eq!((code, o["status"].as_str()), (0, Some("pass")), "{o:#}");
}
