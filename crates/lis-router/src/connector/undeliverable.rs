//! Messages an output can never deliver, kept as files instead of blocking the queue.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{create_dir_all_synced, numbered_name, sync_dir};

/// Writes `payload` durably to a new file `SEQ_TIMESTAMP.dat` in `dir` (created if
/// missing) and returns its path; never replaces a file (`-N` is appended instead).
pub(crate) fn keep(dir: &Path, seq: u64, payload: &[u8]) -> std::io::Result<PathBuf> {
    create_dir_all_synced(dir)?;
    let stem = format!("{seq:012}_{}", chrono::Local::now().format("%Y%m%d%H%M%S"));
    let mut attempt = 0;
    let (path, mut file) = loop {
        let path = dir.join(numbered_name(&stem, attempt, ".dat"));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => break (path, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let written = file.write_all(payload).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_payload_in_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("undeliverable").join("out");
        let first = keep(&target, 7, b"one").unwrap();
        let second = keep(&target, 7, b"two").unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
        assert!(
            first
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("000000000007_")
        );
    }
}
