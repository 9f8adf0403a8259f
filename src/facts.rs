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
    let prefix = git(dir, &["rev-parse", "--show-prefix"])?;
    Some(format!("{}{}", prefix.trim(), name.to_string_lossy()))
}

/// The standard output of `git ARGS` run in `dir`, when git exists and succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// HEAD commit of the git repository holding `dir`, and whether the tree is dirty; `None`
/// outside a repository or without git.
pub fn git_info(dir: &Path) -> Option<GitInfo> {
    let commit = git(dir, &["rev-parse", "HEAD"])?.trim().to_string();
    let dirty = git(dir, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.trim().is_empty());
    Some(GitInfo { commit, dirty })
}
