//! Records the git commit the binary is built from, for `picklegate --version`:
//! `PICKLEGATE_GIT_COMMIT` when the builder sets it (release builds, a source tarball), else
//! `git rev-parse` of the checkout, else nothing.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PICKLEGATE_GIT_COMMIT");
    let commit = std::env::var("PICKLEGATE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            // Rebuild when HEAD moves (the ref file HEAD names, or HEAD itself when detached).
            let git = Path::new(".git");
            if git.is_dir() {
                println!("cargo:rerun-if-changed=.git/HEAD");
                if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
                    if let Some(r) = head.trim().strip_prefix("ref: ") {
                        println!("cargo:rerun-if-changed=.git/{r}");
                    }
                }
            }
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|c| !c.is_empty())
        });
    if let Some(c) = commit {
        println!("cargo:rustc-env=PICKLEGATE_GIT_COMMIT={c}");
    }
}
