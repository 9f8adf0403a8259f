//! The `file` probe: a document or config file exists, is large enough, has the Markdown
//! headings a runbook needs (CommonMark headings, parsed with pulldown-cmark), and is not more
//! permissive than allowed (`.env` at `0600`), and is fresh enough (`max_age`: a backup from
//! the last 24 hours). A `path` with glob characters (`*`, `?`, `[`) checks the newest
//! matching file, by modification time; no match at all is a failed `exists`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput};
use crate::units::format_bytes;

/// `kind = "file"`: check a file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileProbe {
    /// Path, relative to the checklist's folder. With `*`, `?` or `[`, a glob pattern whose
    /// newest match (by modification time) is the file checked, e.g. `"backups/db-*.sql.gz"`.
    pub path: String,
    /// Whether the file must exist (default true). `false` asserts it is absent.
    pub exists: Option<bool>,
    /// Minimum size with a unit, e.g. `"1KiB"`.
    pub min_size: Option<String>,
    /// Markdown headings that must be present (any level, case-insensitive, exact text).
    #[serde(default)]
    pub headings: Vec<String>,
    /// The most permissive mode allowed, as an octal string, e.g. `"0600"`.
    pub max_mode: Option<String>,
    /// The file was modified at most this long ago (humantime), e.g. `"24h"`.
    pub max_age: Option<String>,
}

/// A validated `file` probe.
#[derive(Debug, Clone)]
pub struct FileProbe {
    path: PathBuf,
    exists: bool,
    min_size: Option<u64>,
    headings: Vec<String>,
    max_mode: Option<u32>,
    max_age: Option<std::time::Duration>,
}

impl RawFileProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<FileProbe, FieldError> {
        let path = v.interpolate("path", &self.path)?.value;
        let exists = self.exists.unwrap_or(true);
        if !exists
            && (self.min_size.is_some()
                || !self.headings.is_empty()
                || self.max_mode.is_some()
                || self.max_age.is_some())
        {
            return Err(FieldError::new(
                "exists",
                "exists = false cannot be combined with min_size, headings, max_mode or max_age",
            ));
        }
        let max_mode = match &self.max_mode {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m.trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        FieldError::new(
                            "max_mode",
                            format!(
                                "invalid mode \"{m}\": expected an octal string such as \"0600\""
                            ),
                        )
                    })?,
            ),
        };
        if is_glob(&path) {
            glob::Pattern::new(&path)
                .map_err(|e| FieldError::new("path", format!("invalid glob pattern: {e}")))?;
        }
        Ok(FileProbe {
            max_age: self
                .max_age
                .as_deref()
                .map(|s| v.duration("max_age", s))
                .transpose()?,
            path: PathBuf::from(path),
            exists,
            min_size: self
                .min_size
                .as_deref()
                .map(|s| v.bytes("min_size", s))
                .transpose()?,
            headings: self.headings,
            max_mode,
        })
    }
}

/// The text of every heading in a Markdown document.
pub fn markdown_headings(text: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for ev in Parser::new(text) {
        match ev {
            Event::Start(Tag::Heading { .. }) => current = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = current.take() {
                    out.push(h.trim().to_string());
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = current.as_mut() {
                    h.push_str(&t);
                }
            }
            _ => {}
        }
    }
    out
}

impl FileProbe {
    /// Check the file.
    pub fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let (path, shown) = match self.chosen(ctx) {
            Ok(found) => found,
            Err(_) if !self.exists => return absence(true, &self.path.display().to_string()),
            Err(no_match) => {
                let mut o = ProbeOutput::default();
                o.checks
                    .push(Check::new("exists", "yes", "no file matches", false));
                o.summary = no_match;
                return o;
            }
        };
        let mut o = ProbeOutput::default();
        let meta = std::fs::metadata(&path);
        if !self.exists {
            return absence(meta.is_err(), &shown);
        }
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                o.checks
                    .push(Check::new("exists", "yes", format!("no ({e})"), false));
                o.summary = format!("{shown} is missing");
                return o;
            }
        };
        o.checks.push(Check::new("exists", "yes", "yes", true));
        o.measure("size_bytes", meta.len());
        if let Some(min) = self.min_size {
            o.checks.push(Check::new(
                "size",
                format!("≥ {}", format_bytes(min)),
                format_bytes(meta.len()),
                meta.len() >= min,
            ));
        }
        if let Some(max) = self.max_mode {
            let mode = meta.permissions().mode() & 0o7777;
            o.measure("mode", format!("{mode:04o}"));
            o.checks.push(Check::new(
                "mode",
                format!("no more than {max:04o}"),
                format!("{mode:04o}"),
                mode & !max == 0,
            ));
        }
        if let Some(max) = self.max_age {
            let check = age_check(&mut o, &meta, max);
            o.checks.push(check);
        }
        if !self.headings.is_empty() {
            match std::fs::read_to_string(&path) {
                Err(e) => {
                    o.forced = Some(crate::model::Status::Error);
                    o.summary = format!("{shown}: cannot read as text: {e}");
                    return o;
                }
                Ok(text) => o.checks.push(self.headings_check(&text)),
            }
        }
        let failed = o.failed_checks();
        o.summary = if failed.is_empty() {
            format!("{shown} ({})", format_bytes(meta.len()))
        } else {
            format!("{shown}: failed {}", failed.join(", "))
        };
        o
    }

    /// The file to check and how to show it: `path` itself, or the newest file matching it
    /// when it is a glob pattern; `Err` with a summary when none matches.
    fn chosen(&self, ctx: &ProbeContext) -> Result<(PathBuf, String), String> {
        let path = ctx.resolve(&self.path);
        let written = self.path.display().to_string();
        if !is_glob(&written) {
            return Ok((path, written));
        }
        let newest = glob::glob(&glob_in(ctx, &written))
            .map_err(|e| format!("{written}: {e}"))?
            .flatten()
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max();
        match newest {
            Some((_, p)) => {
                let rel = p.strip_prefix(&ctx.checklist_dir).unwrap_or(&p);
                let shown = format!("{} (newest of {written})", rel.display());
                Ok((p, shown))
            }
            None => Err(format!("no file matches {written}")),
        }
    }

    /// The `headings` check of the Markdown `text`: every heading asked for is present
    /// (case-insensitive, exact text).
    fn headings_check(&self, text: &str) -> Check {
        let found: Vec<String> = markdown_headings(text)
            .into_iter()
            .map(|h| h.to_lowercase())
            .collect();
        let missing: Vec<&String> = self
            .headings
            .iter()
            .filter(|h| !found.contains(&h.trim().to_lowercase()))
            .collect();
        Check::new(
            "headings",
            format!("has {}", self.headings.join(", ")),
            if missing.is_empty() {
                format!("all {} present", self.headings.len())
            } else {
                format!(
                    "missing {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            missing.is_empty(),
        )
    }
}

/// A glob `pattern` from the checklist as an absolute pattern: relative to the checklist's
/// folder, whose own name is escaped (a folder named `[draft]` is not a character class).
pub fn glob_in(ctx: &ProbeContext, pattern: &str) -> String {
    if std::path::Path::new(pattern).is_absolute() {
        return pattern.to_string();
    }
    let dir = glob::Pattern::escape(&ctx.checklist_dir.to_string_lossy());
    match dir.trim_end_matches('/') {
        "" if dir.is_empty() => pattern.to_string(),
        trimmed => format!("{trimmed}/{pattern}"),
    }
}

/// Whether a `path` is a glob pattern.
fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The `max_age` check: the time since the file was last modified is at most `max` (a
/// modification time in the future counts as age zero). Records `age_s`.
fn age_check(o: &mut ProbeOutput, meta: &std::fs::Metadata, max: std::time::Duration) -> Check {
    let expected = format!("≤ {}", crate::units::format_duration(max));
    let Ok(modified) = meta.modified() else {
        return Check::new("age", expected, "modification time unavailable", false);
    };
    let age = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    o.measure("age_s", age.as_secs());
    let shown = crate::units::format_duration(std::time::Duration::from_secs(age.as_secs()));
    Check::new("age", expected, shown, age <= max)
}

/// The outcome of `exists = false`: passes when the file `shown` is `absent`.
fn absence(absent: bool, shown: &str) -> ProbeOutput {
    let mut o = ProbeOutput::default();
    o.checks.push(Check::new(
        "exists",
        "no",
        if absent { "no" } else { "yes" },
        absent,
    ));
    o.summary = if absent {
        format!("{shown} is absent")
    } else {
        format!("{shown} exists")
    };
    o
}

crate::probe::probe_kind!(FileProbe, RawFileProbe, blocking);

#[cfg(test)]
mod tests {
    use super::markdown_headings;

    #[test]
    fn headings_ignore_code_blocks() {
        let md =
            "# Runbook\n\n```\n# not a heading\n```\n\n## Rollback procedure\nSetext\n------\n";
        assert_eq!(
            markdown_headings(md),
            vec!["Runbook", "Rollback procedure", "Setext"]
        );
    }
}
