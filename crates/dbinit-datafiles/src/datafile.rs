//! One data file: where its bytes are, its format, and its manifest entry.

use std::borrow::Cow;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a file's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    Path(PathBuf),
    Static(&'static [u8]),
}

impl Content {
    pub(crate) fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Content::Path(p) => Box::new(std::io::BufReader::with_capacity(
                1 << 16,
                std::fs::File::open(p)?,
            )),
            Content::Static(bytes) => Box::new(*bytes),
        })
    }

    pub(crate) fn read_all(&self) -> std::io::Result<Cow<'static, [u8]>> {
        Ok(match self {
            Content::Path(p) => Cow::Owned(std::fs::read(p)?),
            Content::Static(bytes) => Cow::Borrowed(bytes),
        })
    }

    /// Size and modification time of a file on disk: what changes when it
    /// is written.
    pub(crate) fn stamp(&self) -> Option<(u64, std::time::SystemTime)> {
        match self {
            Content::Path(p) => {
                let meta = std::fs::metadata(p).ok()?;
                Some((meta.len(), meta.modified().ok()?))
            }
            Content::Static(_) => None,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Content::Static(bytes) => bytes.len() as u64,
        }
    }
}

/// How a data file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Json,
    JsonLines,
}

impl Format {
    pub(crate) fn of(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// One `[[file]]` of a manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    pub(crate) path: String,
    pub(crate) table: String,
    pub(crate) key: Vec<String>,
    #[serde(default = "first_version")]
    pub(crate) version: u32,
}

fn first_version() -> u32 {
    1
}

/// A listed data file.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    /// `development/tenants.csv`: the seeder's name.
    pub(crate) name: String,
    /// How errors show it: the real path, or `embedded:<name>`.
    pub(crate) shown: String,
    pub(crate) entry: Entry,
    pub(crate) format: Format,
    pub(crate) content: Content,
}
