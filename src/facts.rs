//! Facts about the environment recorded in every report: host (sysinfo) and git commit.

use std::path::Path;

use crate::report::{GitInfo, HostFacts};

/// The host's name, OS, kernel, architecture, logical CPUs and total memory.
pub fn host_facts() -> HostFacts {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    HostFacts {
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        os: sysinfo::System::long_os_version().unwrap_or_else(|| std::env::consts::OS.to_string()),
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(0),
        memory_bytes: sys.total_memory(),
    }
}

/// The path of file `name` in folder `dir` relative to the root of the git repository holding
/// it (`checklists/ci.toml`), or `None` outside a repository or without git.
pub fn repo_relative_path(dir: &Path, name: &std::ffi::OsStr) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-prefix"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Some(format!("{prefix}{}", name.to_string_lossy()))
}

/// HEAD commit of the git repository holding `dir`, and whether the tree is dirty; `None`
/// outside a repository or without git.
pub fn git_info(dir: &Path) -> Option<GitInfo> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    Some(GitInfo { commit, dirty })
}
