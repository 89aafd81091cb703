//! The Python venv of scripts/python-env.sh, and moto's S3-compatible server on a free port
//! (scripts/moto-server.sh), stopped on drop.
#![allow(dead_code)]

use std::process::Command;

/// The venv's bin directory (built on first use).
pub fn python_bin() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/python-env.sh");
    let out = Command::new("bash").arg(script).output().expect("python-env.sh");
    assert!(out.status.success(), "python-env.sh: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct Moto {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Self {
        python_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/moto-server.sh");
        let out = Command::new("bash")
            .args([script, "start"])
            .arg(dir.path())
            .env("SLUICE_TEST_OWNER_PID", std::process::id().to_string())
            .output()
            .expect("moto-server.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let port = stdout.lines().find_map(|l| l.strip_prefix("port=")).and_then(|p| p.trim().parse().ok());
        let port = port.unwrap_or_else(|| panic!("moto did not start: {}", String::from_utf8_lossy(&out.stderr)));
        Self { dir, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto accepts any credentials: these are `k` / `s`).
    pub fn create_bucket(&self, bucket: &str) {
        let py = format!("{}/python", python_bin());
        let mk = format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='k', aws_secret_access_key='s').create_bucket(Bucket='{bucket}')",
            self.endpoint()
        );
        assert!(Command::new(&py).args(["-c", &mk]).status().expect("python").success(), "creating bucket {bucket} failed");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/moto-server.sh");
        let _ = Command::new("bash").args([script, "stop"]).arg(self.dir.path()).status();
    }
}
