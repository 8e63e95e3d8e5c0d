//! Disk space the store sets aside so that it can still delete on a full disk.
//!
//! redb never overwrites a live page: even deleting delivered messages writes new pages
//! first. On a disk filled to the last block (by the queue itself while an output was
//! down, or by another program) every commit fails, deletes included, so the queue could
//! never shrink again. The store therefore keeps a file of [`RESERVE_BYTES`] with real
//! blocks beside its database and gives it back to the file system when a commit runs
//! out of space.

use std::fs::File;
use std::io;
use std::path::PathBuf;

/// The reserve file inside the data directory.
pub const RESERVE_FILE: &str = "router.reserve";
/// Size of the reserve: far more than a transaction that only deletes and moves cursors
/// writes, and small beside any disk that holds a queue.
pub const RESERVE_BYTES: u64 = 4 << 20;

/// The reserve file and whether it is in place.
#[derive(Debug)]
pub(crate) struct SpaceReserve {
    path: PathBuf,
    held: bool,
}

impl SpaceReserve {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, held: false }
    }

    /// Gives back a reserve a previous run left (the file exists, but this one does not
    /// hold it yet), so that opening the store on a full disk can use its space; false
    /// if there was none.
    pub(crate) fn give_back_leftover(&self) -> bool {
        if self.held {
            return false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::error!("cannot remove {}: {e}", self.path.display());
                false
            }
        }
    }

    /// Sets the space aside (again); on failure nothing is left behind.
    pub(crate) fn take(&mut self) -> io::Result<()> {
        if self.held {
            return Ok(());
        }
        let made = File::create(&self.path).and_then(|file| {
            allocate(&file, RESERVE_BYTES)?;
            file.sync_all()
        });
        match made {
            Ok(()) => {
                self.held = true;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&self.path);
                Err(e)
            }
        }
    }

    /// Gives the space back to the file system; false if it was not held.
    pub(crate) fn release(&mut self) -> bool {
        if !self.held {
            return false;
        }
        self.held = false;
        match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("cannot remove {}: {e}", self.path.display());
                false
            }
        }
    }
}

/// Gives the file `len` bytes of real blocks (a sparse file would free nothing).
#[cfg(target_os = "linux")]
fn allocate(file: &File, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Err(rustix::io::Errno::OPNOTSUPP) => write_out(file, len),
        other => Ok(other?),
    }
}

#[cfg(not(target_os = "linux"))]
fn allocate(file: &File, len: u64) -> io::Result<()> {
    write_out(file, len)
}

/// Writes `len` bytes (not zeros, which a compressing file system would not store).
fn write_out(file: &File, len: u64) -> io::Result<()> {
    use std::io::Write;
    let chunk = vec![0xa5_u8; 1 << 20];
    let mut file = file;
    for _ in 0..len.div_ceil(chunk.len() as u64) {
        file.write_all(&chunk)?;
    }
    Ok(())
}

/// Whether a store error means the file system (or a quota, or a size limit) has no room.
pub(crate) fn is_out_of_space(error: &redb::Error) -> bool {
    matches!(error, redb::Error::Io(io) if is_full(io))
}

/// Whether an I/O error means the file system (or a quota, or a size limit) has no room.
pub(crate) fn is_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_holds_real_blocks_and_is_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESERVE_FILE);
        let mut reserve = SpaceReserve::new(path.clone());
        reserve.take().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let blocks = std::fs::metadata(&path).unwrap().blocks();
            assert!(blocks * 512 >= RESERVE_BYTES, "{blocks} blocks");
        }
        assert!(reserve.release());
        assert!(!path.exists());
        assert!(!reserve.release());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn full_disk_errors_are_told_apart_from_other_io_errors() {
        let full = redb::Error::Io(io::Error::from_raw_os_error(28));
        let quota = redb::Error::Io(io::Error::from_raw_os_error(122));
        let other = redb::Error::Io(io::Error::from_raw_os_error(5));
        assert!(is_out_of_space(&full));
        assert!(is_out_of_space(&quota));
        assert!(!is_out_of_space(&other));
        assert!(!is_out_of_space(&redb::Error::PreviousIo));
    }
}
