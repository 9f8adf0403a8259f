//! Portable reports: a report is read and signed on other machines than the one that ran it,
//! so it holds no absolute path of that machine (a CI runner's temporary folder, a home
//! directory). This module owns the one rewrite that every text of the report goes through,
//! whichever probe wrote it: paths under the report folder become relative to the report
//! folder, paths under the checklist's folder relative to the checklist's folder, and paths
//! under the home directory start with `~`.

use std::path::{Path, PathBuf};

use super::Report;

/// Prefix rewrites, most specific first.
#[derive(Debug, Clone, Default)]
pub struct PathMap {
    /// `(absolute folder, what it becomes)`, longest folder first.
    rules: Vec<(String, &'static str)>,
}

impl PathMap {
    /// Rewrites for a run of a checklist in `checklist_dir` writing to `report_dir`, with the
    /// user's `home` (usually `$HOME`). Each folder is taken both as given and canonicalized.
    pub fn new(checklist_dir: &Path, report_dir: &Path, home: Option<PathBuf>) -> PathMap {
        let mut rules = Vec::new();
        let mut add = |dir: &Path, to: &'static str| {
            for d in [dir.to_path_buf(), dir.canonicalize().unwrap_or_default()] {
                let s = d.to_string_lossy().trim_end_matches('/').to_string();
                // The root folder (or nothing) would rewrite every absolute path.
                if s.len() > 1 && !rules.iter().any(|(r, _)| *r == s) {
                    rules.push((s, to));
                }
            }
        };
        add(report_dir, ".");
        add(checklist_dir, ".");
        if let Some(h) = home {
            add(&h, "~");
        }
        rules.sort_by_key(|(r, _)| std::cmp::Reverse(r.len()));
        PathMap { rules }
    }

    /// `text` with every absolute path under a mapped folder rewritten: `DIR/a/b` becomes
    /// `a/b` (`~/a/b` for the home folder) and `DIR` alone becomes `.` (`~`). A folder name
    /// that merely starts with `DIR` (`DIR2/x`) is left alone.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (dir, to) in &self.rules {
            out = replace_dir(&out, dir, to);
        }
        out
    }

    /// Rewrite every string of `report` in place.
    ///
    /// # Errors
    /// Only if the report cannot round-trip through JSON, which would be a bug in its types.
    pub fn apply_to_report(&self, report: &mut Report) -> serde_json::Result<()> {
        let mut value = serde_json::to_value(&*report)?;
        self.apply_to_value(&mut value);
        *report = serde_json::from_value(value)?;
        Ok(())
    }

    fn apply_to_value(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains('/') => *s = self.apply(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.apply_to_value(x)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| self.apply_to_value(x)),
            _ => {}
        }
    }
}

/// Replace `dir` where it stands as a whole path prefix: followed by `/` (dropped, or kept
/// after `~`) or by a character that cannot continue a file name.
fn replace_dir(text: &str, dir: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(dir) {
        let after = &rest[at + dir.len()..];
        out.push_str(&rest[..at]);
        // Only where a path starts: at the beginning or after a separator-like character.
        let starts_path = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')));
        match after.chars().next() {
            Some('/') if starts_path => {
                if to == "~" {
                    out.push_str("~/");
                }
                rest = &after[1..];
            }
            next if starts_path && next.is_none_or(|c| !is_name_char(c)) => {
                out.push_str(to);
                rest = after;
            }
            _ => {
                out.push_str(dir);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@' | '~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PathMap {
        PathMap::new(
            Path::new("/tmp/ci-1234/repo/checklists"),
            Path::new("/tmp/ci-1234/repo/checklists/reports/run"),
            Some(PathBuf::from("/home/ci")),
        )
    }

    #[test]
    fn paths_under_the_checklist_and_report_folders_become_relative() {
        let m = map();
        assert_eq!(
            m.apply("report /tmp/ci-1234/repo/checklists/target/lcov.info not found"),
            "report target/lcov.info not found"
        );
        assert_eq!(
            m.apply("wrote /tmp/ci-1234/repo/checklists/reports/run/evidence/a.txt"),
            "wrote evidence/a.txt"
        );
        assert_eq!(
            m.apply("cwd /tmp/ci-1234/repo/checklists: exit 1"),
            "cwd .: exit 1"
        );
        assert_eq!(
            m.apply("\"/tmp/ci-1234/repo/checklists/../Cargo.lock\""),
            "\"../Cargo.lock\""
        );
    }

    #[test]
    fn home_becomes_a_tilde_and_lookalike_folders_are_left_alone() {
        let m = map();
        assert_eq!(
            m.apply("db /home/ci/.cargo/advisory-db"),
            "db ~/.cargo/advisory-db"
        );
        assert_eq!(m.apply("/home/ci2/x /home/cix"), "/home/ci2/x /home/cix");
        assert_eq!(
            m.apply("/tmp/ci-1234/repo/checklists2/a"),
            "/tmp/ci-1234/repo/checklists2/a"
        );
        assert_eq!(m.apply("/srv/home/ci/x"), "/srv/home/ci/x");
    }

    #[test]
    fn the_root_folder_is_never_a_rule() {
        let m = PathMap::new(Path::new("/"), Path::new("/"), Some(PathBuf::from("/")));
        assert_eq!(m.apply("/etc/passwd"), "/etc/passwd");
    }
}
