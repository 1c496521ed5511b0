//! (being written by the file-player helper; placeholder so the crate builds)
use std::path::PathBuf;
/// Why a file could not be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("cannot open {path}: {kind}")]
    Open { path: PathBuf, kind: std::io::ErrorKind },
}
pub struct FilePlayer;
