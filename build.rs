//! `trident --version` carries the git revision when the build has git and a repository;
//! without them (a source tarball, a build container) it is the crate version alone. Never
//! fails the build.

use std::path::Path;
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let revision = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()));
    match revision {
        Some(rev) => println!("cargo:rustc-env=TRIDENT_VERSION={version} (git {rev})"),
        None => println!("cargo:rustc-env=TRIDENT_VERSION={version}"),
    }
    // Rebuild when HEAD moves; only for files that exist (a missing one reruns every build).
    for file in [".git/HEAD", ".git/logs/HEAD"] {
        if Path::new(file).exists() {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
