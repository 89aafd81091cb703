//! Where the lake lives: a local directory or `s3://bucket/prefix`, with the S3 settings.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::config::LakeConfig;
use sluice_core::{SluiceError, TableId};
use url::Url;

/// The lake root and how to reach it.
#[derive(Clone, Debug)]
pub struct Storage {
    root: Url,
    options: HashMap<String, String>,
}

impl Storage {
    /// The lake of `cfg`, as it is: creates nothing (read-only commands use this). A local path
    /// that does not exist yet is fine (an empty lake); one that is a file is an error.
    pub fn new(cfg: &LakeConfig) -> Result<Self, SluiceError> {
        let root = if cfg.path.starts_with("s3://") || cfg.path.starts_with("s3a://") {
            static REGISTER: Once = Once::new();
            REGISTER.call_once(|| deltalake::aws::register_handlers(None));
            let p = if cfg.path.ends_with('/') { cfg.path.clone() } else { format!("{}/", cfg.path) };
            Url::parse(&p)
                .map_err(|e| SluiceError::permanent(format!("[sink.lake] path {}: not a valid s3:// url", cfg.path)).with_source(e))?
        } else if cfg.path.contains("://") {
            return Err(SluiceError::permanent(format!("[sink.lake] path {}: only local paths and s3:// are supported", cfg.path)));
        } else {
            let path = Path::new(&cfg.path);
            if path.exists() && !path.is_dir() {
                return Err(SluiceError::permanent(format!(
                    "[sink.lake] path {} is a file, not a directory: point it at a directory (it is created if missing)",
                    cfg.path
                )));
            }
            // The real path of an existing lake; a missing one made absolute as written.
            let abs = if path.exists() { std::fs::canonicalize(path) } else { std::path::absolute(path) }
                .map_err(|e| SluiceError::permanent(format!("[sink.lake] path {}: cannot resolve it", cfg.path)).with_source(e))?;
            Url::from_directory_path(&abs)
                .map_err(|_| SluiceError::permanent(format!("[sink.lake] path {} is not absolute", abs.display())))?
        };
        let mut options = HashMap::new();
        let s3 = &cfg.s3;
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                options.insert(k.to_string(), v.to_string());
            }
        };
        put("AWS_REGION", s3.region.as_deref());
        put("AWS_ENDPOINT_URL", s3.endpoint.as_deref());
        put("AWS_ACCESS_KEY_ID", s3.access_key_id.as_deref());
        put("AWS_SECRET_ACCESS_KEY", s3.secret_access_key.as_ref().map(|s| s.expose()));
        put("AWS_SESSION_TOKEN", s3.session_token.as_ref().map(|s| s.expose()));
        if s3.allow_http {
            put("AWS_ALLOW_HTTP", Some("true"));
        }
        if s3.endpoint.is_some() {
            put("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", Some("false"));
        }
        // One writer per lake (the state dir is locked), so S3's lack of atomic rename is safe.
        put("AWS_S3_ALLOW_UNSAFE_RENAME", Some("true"));
        Ok(Self { root, options })
    }

    /// Like [`Storage::new`], and creates a local lake directory that does not exist yet: for
    /// the sink (`sluice run`), the only writer.
    pub fn create(cfg: &LakeConfig) -> Result<Self, SluiceError> {
        let storage = Self::new(cfg)?;
        let Some(dir) = storage.local_root().filter(|d| !d.is_dir()) else { return Ok(storage) };
        std::fs::create_dir_all(&dir).map_err(|e| {
            SluiceError::permanent(format!("[sink.lake] path {}: cannot create the lake directory", cfg.path)).with_source(e)
        })?;
        // Again, now that it exists: the root is the directory's real path.
        Self::new(cfg)
    }

    /// The directory of a local lake.
    pub fn local_root(&self) -> Option<PathBuf> {
        if self.is_local() {
            self.root.to_file_path().ok()
        } else {
            None
        }
    }

    pub fn is_local(&self) -> bool {
        self.root.scheme() == "file"
    }

    /// `<root>/db/t/` or `<root>/db/t__changes/`.
    pub fn table_url(&self, id: &TableId, changes: bool) -> Result<Url, SluiceError> {
        let suffix = if changes { "__changes" } else { "" };
        self.root
            .join(&format!("{}/{}{suffix}/", enc(&id.db), enc(&id.table)))
            .map_err(|e| SluiceError::permanent(format!("lake url for {id}: {e}")))
    }

    pub fn options(&self) -> &HashMap<String, String> {
        &self.options
    }

    pub fn root(&self) -> &Url {
        &self.root
    }
}

fn enc(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}
