//! A file opened for reading, presented to redb as writable storage whose
//! writes land in memory.
//!
//! Invariant: nothing is ever written to the file. redb writes to its
//! storage even to read (it marks the file open, and repairs an unclean
//! shutdown); those writes go to copy-on-write pages in memory, and reads
//! see them over the file's bytes, so redb sees a consistent storage and
//! the file stays exactly as it was.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use redb::StorageBackend;

/// Bytes per page of the in-memory overlay.
const PAGE: u64 = 4096;

/// A file opened for reading, presented to redb as writable storage whose
/// writes land in memory (copy-on-write pages): the file never changes.
#[derive(Debug)]
pub(crate) struct ReadOnlyFile {
    file: Mutex<File>,
    overlay: Mutex<Overlay>,
}

#[derive(Debug)]
struct Overlay {
    /// The storage's length as redb sees it.
    len: u64,
    /// Bytes of the file at or past this offset read as zero (the storage
    /// was shortened below it at some point).
    file_len: u64,
    pages: HashMap<u64, Box<[u8]>>,
}

impl ReadOnlyFile {
    pub(crate) fn open(path: &Path) -> std::io::Result<ReadOnlyFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file is empty: not an event log",
            ));
        }
        Ok(ReadOnlyFile {
            file: Mutex::new(file),
            overlay: Mutex::new(Overlay {
                len,
                file_len: len,
                pages: HashMap::new(),
            }),
        })
    }

    /// Read `out.len()` bytes of the file at `offset`, zeros past its end.
    fn read_file(&self, offset: u64, out: &mut [u8], file_len: u64) -> std::io::Result<()> {
        out.fill(0);
        if offset >= file_len {
            return Ok(());
        }
        let n = (file_len - offset).min(out.len() as u64) as usize;
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut out[..n])
    }
}

impl StorageBackend for ReadOnlyFile {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.overlay.lock().unwrap_or_else(|e| e.into_inner()).len)
    }

    fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= overlay.len)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let mut out = vec![0u8; len];
        self.read_file(offset, &mut out, overlay.file_len)?;
        for page in offset / PAGE..end.div_ceil(PAGE) {
            if let Some(data) = overlay.pages.get(&page) {
                let start = (page * PAGE).max(offset);
                let stop = ((page + 1) * PAGE).min(end);
                out[(start - offset) as usize..(stop - offset) as usize].copy_from_slice(
                    &data[(start - page * PAGE) as usize..(stop - page * PAGE) as usize],
                );
            }
        }
        Ok(out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        if len < overlay.len {
            overlay.file_len = overlay.file_len.min(len);
            overlay.pages.retain(|&p, _| p * PAGE < len);
            if let Some(data) = overlay.pages.get_mut(&(len / PAGE)) {
                data[(len % PAGE) as usize..].fill(0);
            }
        }
        overlay.len = len;
        Ok(())
    }

    fn sync_data(&self, _: bool) -> std::io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        let end = offset + data.len() as u64;
        for page in offset / PAGE..end.div_ceil(PAGE) {
            if !overlay.pages.contains_key(&page) {
                let mut fresh = vec![0u8; PAGE as usize].into_boxed_slice();
                let visible = overlay.len.min(overlay.file_len);
                self.read_file(page * PAGE, &mut fresh, visible)?;
                overlay.pages.insert(page, fresh);
            }
            let buf = overlay.pages.get_mut(&page).expect("inserted above");
            let start = (page * PAGE).max(offset);
            let stop = ((page + 1) * PAGE).min(end);
            buf[(start - page * PAGE) as usize..(stop - page * PAGE) as usize]
                .copy_from_slice(&data[(start - offset) as usize..(stop - offset) as usize]);
        }
        overlay.len = overlay.len.max(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(bytes: &[u8]) -> (std::path::PathBuf, ReadOnlyFile) {
        let p = std::env::temp_dir().join(format!(
            "spectree-overlay-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&p, bytes).unwrap();
        let f = ReadOnlyFile::open(&p).unwrap();
        (p, f)
    }

    #[test]
    fn writes_stay_in_memory_and_reads_see_them() {
        let original: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let (path, f) = scratch(&original);
        // A write across a page boundary, then reads around it.
        f.write(4090, &[7; 20]).unwrap();
        let got = f.read(4080, 40).unwrap();
        assert_eq!(&got[..10], &original[4080..4090]);
        assert_eq!(&got[10..30], &[7; 20]);
        assert_eq!(&got[30..], &original[4110..4120]);
        // Growing past the file reads zeros; shrinking then growing too.
        f.set_len(12_000).unwrap();
        assert_eq!(f.read(10_000, 100).unwrap(), vec![0; 100]);
        f.set_len(5000).unwrap();
        f.set_len(9000).unwrap();
        assert_eq!(f.read(4999, 2).unwrap(), vec![original[4999], 0]);
        assert_eq!(f.read(8000, 10).unwrap(), vec![0; 10]);
        assert!(f.read(8995, 10).is_err(), "past the end");
        assert_eq!(std::fs::read(&path).unwrap(), original, "the file changed");
        std::fs::remove_file(&path).ok();
    }
}
