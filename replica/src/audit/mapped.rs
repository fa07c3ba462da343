//! A journal segment mapped into memory (Linux only): records are copied into a shared
//! mapping of the segment file, which puts them in the page cache exactly as `write(2)` would
//! (a crash of the process loses nothing copied; `fdatasync` on the file makes them durable),
//! without a system call per batch. Small appends through `write(2)` cost the kernel a zeroing
//! of page-cache blocks each (docs/BENCHMARKS.md, "Audit"); a copy into the mapping does not.
//!
//! The file's blocks are allocated up front (`fallocate`), so a page fault never meets a full
//! disk (which would kill the process with SIGBUS); a file that cannot be allocated is
//! reported and the journal writes through `write(2)` instead. The file is then longer than
//! its records, and ends in zeros: the journal cuts it back to its records when it closes the
//! segment, and a crash leaves zeros that the reader treats as the end (an entry of length 0
//! is never valid) and `Journal::open` cuts.
//!
//! Not pure: `fallocate`, `mmap`, `munmap`; the only unsafe code of the journal.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// A writable shared mapping of the first `len` bytes of a file.
pub struct MappedSegment {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; it is only written through
// `&mut self` and unmapped once, on drop.
unsafe impl Send for MappedSegment {}

impl MappedSegment {
    /// Allocates `len` bytes of `file` on disk and maps them.
    pub fn map(file: &File, len: usize) -> io::Result<MappedSegment> {
        let fd = file.as_raw_fd();
        let size = libc::off_t::try_from(len).map_err(|_| io::Error::other("segment too large"))?;
        // SAFETY: fallocate on an open descriptor we own; no memory is involved.
        if unsafe { libc::fallocate(fd, 0, 0, size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh shared mapping of `len` bytes of an open file, checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MappedSegment {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Copies `bytes` to offset `at`; false (nothing copied) when they do not fit.
    pub fn write_at(&mut self, at: u64, bytes: &[u8]) -> bool {
        let Ok(at) = usize::try_from(at) else {
            return false;
        };
        if at.checked_add(bytes.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: `at..at + bytes.len()` lies inside the mapping (checked above), which
        // nothing else writes while `&mut self` is held; `bytes` is ordinary memory.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) };
        true
    }
}

impl Drop for MappedSegment {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`, once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn copies_land_in_the_file_and_overruns_are_refused() {
        let dir = std::env::temp_dir().join(format!("gh-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut map = MappedSegment::map(&file, 4096).unwrap();
        assert!(map.write_at(0, b"head"));
        assert!(map.write_at(4, b"er"));
        assert!(
            !map.write_at(4095, b"too long"),
            "a copy past the end is refused"
        );
        drop(map);
        let mut bytes = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 4096, "the blocks were allocated up front");
        assert_eq!(&bytes[..6], b"header");
        assert!(
            bytes[6..].iter().all(|&b| b == 0),
            "the rest reads as zeros"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
