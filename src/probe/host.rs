//! The `host` probe: "production hardware meets minimum requirements" — logical CPUs, total
//! memory and free disk space at a path, read with sysinfo.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput};
use crate::units::format_bytes;

/// `kind = "host"`: minimum hardware.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHostProbe {
    /// Minimum logical CPUs.
    pub min_cpus: Option<u32>,
    /// Minimum total memory with a unit, e.g. `"8GiB"`.
    pub min_memory: Option<String>,
    /// Minimum free (available) disk space at `disk_path`, e.g. `"50GiB"`.
    pub min_disk_free: Option<String>,
    /// Path whose file system is checked. Default: the checklist's folder.
    pub disk_path: Option<String>,
    /// Required operating system as Rust names it (`linux`, `macos`).
    pub os: Option<String>,
}

/// A validated `host` probe.
#[derive(Debug, Clone)]
pub struct HostProbe {
    min_cpus: Option<u32>,
    min_memory: Option<u64>,
    min_disk_free: Option<u64>,
    disk_path: Option<PathBuf>,
    os: Option<String>,
}

impl RawHostProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<HostProbe, FieldError> {
        if self.min_cpus.is_none()
            && self.min_memory.is_none()
            && self.min_disk_free.is_none()
            && self.os.is_none()
        {
            return Err(FieldError::new(
                "",
                "expected at least one of: min_cpus, min_memory, min_disk_free, os",
            ));
        }
        if self.disk_path.is_some() && self.min_disk_free.is_none() {
            return Err(FieldError::new(
                "disk_path",
                "disk_path needs min_disk_free beside it",
            ));
        }
        Ok(HostProbe {
            min_cpus: self.min_cpus,
            min_memory: self
                .min_memory
                .as_deref()
                .map(|s| v.bytes("min_memory", s))
                .transpose()?,
            min_disk_free: self
                .min_disk_free
                .as_deref()
                .map(|s| v.bytes("min_disk_free", s))
                .transpose()?,
            disk_path: self.disk_path.map(PathBuf::from),
            os: self.os,
        })
    }
}

/// Available bytes on the file system holding `path` (the mount with the longest matching
/// mount point).
pub fn disk_free_at(path: &std::path::Path) -> Option<(u64, PathBuf)> {
    let path = std::fs::canonicalize(path).ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| (d.available_space(), d.mount_point().to_path_buf()))
}

impl HostProbe {
    /// Read the host facts and compare.
    pub fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        if let Some(os) = &self.os {
            let actual = std::env::consts::OS;
            o.checks
                .push(Check::new("os", format!("= {os}"), actual, actual == os));
        }
        if let Some(min) = self.min_cpus {
            let cpus = std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(0);
            o.measure("cpus", cpus);
            o.checks.push(Check::new(
                "CPUs",
                format!("≥ {min}"),
                cpus.to_string(),
                cpus >= min,
            ));
        }
        if let Some(min) = self.min_memory {
            let mut sys = sysinfo::System::new();
            sys.refresh_memory();
            let total = sys.total_memory();
            o.measure("memory_bytes", total);
            o.checks.push(Check::new(
                "memory",
                format!("≥ {}", format_bytes(min)),
                format_bytes(total),
                total >= min && total > 0,
            ));
        }
        if let Some(min) = self.min_disk_free {
            let at = self
                .disk_path
                .as_ref()
                .map(|p| ctx.resolve(p))
                .unwrap_or_else(|| ctx.checklist_dir.clone());
            match disk_free_at(&at) {
                Some((free, mount)) => {
                    o.measure("disk_free_bytes", free);
                    o.checks.push(Check::new(
                        format!("free disk at {}", mount.display()),
                        format!("≥ {}", format_bytes(min)),
                        format_bytes(free),
                        free >= min,
                    ));
                }
                None => {
                    o.forced = Some(crate::model::Status::Error);
                    o.checks.push(Check::new(
                        "free disk",
                        format!("≥ {}", format_bytes(min)),
                        format!("no file system found for {}", at.display()),
                        false,
                    ));
                }
            }
        }
        o.summary = o
            .checks
            .iter()
            .map(|c| format!("{} {}", c.name, c.measured))
            .collect::<Vec<_>>()
            .join(", ");
        o
    }
}

crate::probe::probe_kind!(HostProbe, RawHostProbe, blocking);
