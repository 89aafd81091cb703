//! A tmpfs the test mounts (tests run as root): a disk that fills up, and can grow afterwards.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

/// A tmpfs on a temp dir, unmounted on drop: a disk that fills up, and can grow afterwards.
pub struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("sluice-full-disk-").tempdir().unwrap();
        mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], dir.path());
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Resizes it in place, files kept (`size` as mount(8) takes it: bytes, or `512m`).
    pub fn resize(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], self.path());
    }

    /// Shrinks it to what it holds now plus `free` bytes.
    pub fn leave_free(&self, free: u64) {
        let out = Command::new("df").args(["-B1", "--output=used"]).arg(self.path()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let used: u64 = text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("df printed {text:?}"));
        self.resize(&(used + free).to_string());
    }
}

fn mount(args: &[&str], dir: &Path) {
    let out = Command::new("mount").args(args).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?} {} failed (these tests need root): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.path()).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a killed sluice not yet reaped): detach now, freed once it is gone.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}
