//! The IVF partition the parts of a graph share. Every part of a graph computed in parts needs the
//! same partition of all the faces (the cells, and every face's probes), and building it is a
//! fixed cost that does not shrink with the part (at three million faces, 39 s of a part's 80).
//! So the first part to need it builds it and saves it in the parts' folder; the others read it.
//!
//! The file is a header naming what it was built for (opaque bytes: the caller's JSON), the
//! partition ([`Partition::write`]) and a SHA-256 of everything before it. It is written to a
//! temporary file and renamed into place once synced, so a file present is whole; one built for
//! another header, cut short or damaged is built again and replaced. Parts running at once take
//! turns through a lock on a file beside it (released by the system when a process dies), so one
//! builds while the others wait for it; where the file system has no locks, each builds its own.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ivf::Partition;
use super::source::GraphError;

const MAGIC: &[u8; 8] = b"VISAGEP1";
/// The file's name in the parts' folder.
pub const FILE_NAME: &str = "ivf-partition.bin";
const LOCK_NAME: &str = ".ivf-partition.lock";

/// Where a partition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Built by this process (and saved for the other parts).
    Built,
    /// Read from the file another part saved.
    Read,
}

/// The partition file of a folder of parts, for one header.
pub struct PartitionFile {
    path: PathBuf,
    header: Vec<u8>,
}

/// Writes everything through a digest.
struct Digesting<W> {
    inner: W,
    sum: Sha256,
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads everything through a digest.
struct Digested<R> {
    inner: R,
    sum: Sha256,
}

impl<R: Read> Read for Digested<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }
}

impl PartitionFile {
    /// The partition file in `dir`, for a partition built for `header`.
    pub fn new(dir: &Path, header: Vec<u8>) -> Self {
        PartitionFile {
            path: dir.join(FILE_NAME),
            header,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved partition for `rows` rows of `dim`, or `build` it (once among the parts running
    /// at once) and save it.
    pub fn get_or_build(
        &self,
        rows: usize,
        dim: usize,
        build: impl FnOnce() -> Result<Partition, GraphError>,
    ) -> Result<(Partition, Origin), GraphError> {
        if let Some(found) = self.read(rows, dim) {
            return Ok((found, Origin::Read));
        }
        let _lock = self.lock();
        // Another part may have saved it while this one waited.
        if let Some(found) = self.read(rows, dim) {
            return Ok((found, Origin::Read));
        }
        let part = build()?;
        // The part's edges do not depend on the file: a folder that cannot take it costs the
        // other parts the build, no more.
        if let Err(e) = self.save(&part) {
            log::warn!(
                "the IVF partition could not be saved for the other parts ({}): {e}",
                self.path.display()
            );
        }
        Ok((part, Origin::Built))
    }

    /// The lock that lets one part build at a time; `None` where the file system has none.
    fn lock(&self) -> Option<File> {
        let dir = self.path.parent()?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_NAME))
            .ok()?;
        match file.try_lock() {
            Ok(()) => Some(file),
            Err(TryLockError::WouldBlock) => {
                log::info!("another part is building the IVF partition; waiting for it");
                file.lock().ok().map(|()| file)
            }
            Err(TryLockError::Error(e)) => {
                log::debug!("no lock on {}: {e}", dir.display());
                None
            }
        }
    }

    /// The partition saved for this header, if one is there whole.
    fn read(&self, rows: usize, dim: usize) -> Option<Partition> {
        let file = File::open(&self.path).ok()?;
        let mut input = Digested {
            inner: BufReader::with_capacity(1 << 20, file),
            sum: Sha256::new(),
        };
        let found = (|| -> std::io::Result<Option<Partition>> {
            let mut head = [0u8; 12];
            input.read_exact(&mut head)?;
            let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
            if &head[..8] != MAGIC || len != self.header.len() {
                return Ok(None);
            }
            let mut header = vec![0u8; len];
            input.read_exact(&mut header)?;
            if header != self.header {
                return Ok(None);
            }
            let Some(part) = Partition::read(&mut input, rows, dim)? else {
                return Ok(None);
            };
            let sum: [u8; 32] = input.sum.clone().finalize().into();
            let mut stored = [0u8; 32];
            input.inner.read_exact(&mut stored)?;
            let mut rest = [0u8; 1];
            let whole = sum == stored && input.inner.read(&mut rest)? == 0;
            Ok(whole.then_some(part))
        })();
        match found {
            Ok(Some(part)) => Some(part),
            Ok(None) => None,
            Err(e) => {
                log::debug!("{}: {e}; building it again", self.path.display());
                None
            }
        }
    }

    /// Save `part` whole or not at all.
    fn save(&self, part: &Partition) -> std::io::Result<()> {
        crate::atomic::write_with(&self.path, |file| {
            let mut out = Digesting {
                inner: file,
                sum: Sha256::new(),
            };
            out.write_all(MAGIC)?;
            out.write_all(&(self.header.len() as u32).to_le_bytes())?;
            out.write_all(&self.header)?;
            part.write(&mut out)?;
            let sum: [u8; 32] = out.sum.finalize().into();
            out.inner.write_all(&sum)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ivf::{IvfParams, IvfStats};
    use crate::graph::parts::{self, Split};
    use crate::graph::synthetic::{DIM, People};
    use crate::graph::{Control, GraphBackend, InMemory, Method, Rows};

    const MAX_D2: f32 = 0.64 * 0.64;

    /// The partition of these rows, as a part builds it.
    fn build(rows: &[f32]) -> Result<Partition, GraphError> {
        let source = InMemory {
            rows: Rows::F32(rows),
            dim: DIM,
        };
        let mut stats = IvfStats::default();
        Partition::build(
            &source,
            MAX_D2,
            &IvfParams::default(),
            &Control::quiet(),
            &mut stats,
        )
    }

    /// The edges of part `split` of the people's graph, the partition from `shared` if given.
    fn part(
        rows: &[f32],
        split: Split,
        shared: Option<&PartitionFile>,
    ) -> (Vec<(u32, u32)>, Option<Origin>) {
        let mut edges = Vec::new();
        let report = parts::compute(
            &GraphBackend::Cpu,
            &InMemory {
                rows: Rows::F32(rows),
                dim: DIM,
            },
            MAX_D2,
            Method::CpuApproximate,
            &IvfParams::default(),
            split,
            shared,
            usize::MAX,
            &mut |e| {
                edges.extend(e.iter().map(|e| (e.i, e.j)));
                Ok(())
            },
            &Control::quiet(),
        )
        .unwrap();
        (edges, report.partition)
    }

    #[test]
    fn parts_share_one_partition_and_find_the_edges_of_one_machine() {
        let rows = People::new(3000, 5).rows_f32();
        let (mut whole, origin) = part(&rows, Split::WHOLE, None);
        assert_eq!(origin, None);
        whole.sort_unstable();
        assert!(whole.len() > 5_000, "{} edges", whole.len());

        let dir = tempfile::tempdir().unwrap();
        let file = PartitionFile::new(dir.path(), b"library A".to_vec());
        let mut joined = Vec::new();
        for index in 0..3 {
            let (edges, origin) = part(&rows, Split { index, count: 3 }, Some(&file));
            // The first part builds it, the others read it.
            let expected = if index == 0 {
                Origin::Built
            } else {
                Origin::Read
            };
            assert_eq!(origin, Some(expected), "part {index}");
            joined.extend(edges);
        }
        joined.sort_unstable();
        assert_eq!(joined, whole);
        assert!(file.path().is_file());
    }

    #[test]
    fn a_file_of_another_header_or_damaged_is_built_again() {
        let rows = People::new(1500, 9).rows_f32();
        let build = || build(&rows);
        let dir = tempfile::tempdir().unwrap();
        let a = PartitionFile::new(dir.path(), b"library A".to_vec());
        let (built, origin) = a.get_or_build(rows.len() / DIM, DIM, build).unwrap();
        assert_eq!(origin, Origin::Built);
        let bytes = std::fs::read(a.path()).unwrap();
        let (read, origin) = a
            .get_or_build(rows.len() / DIM, DIM, || panic!("read, not built"))
            .unwrap();
        assert_eq!(origin, Origin::Read);
        let mut wrote = (Vec::new(), Vec::new());
        built.write(&mut wrote.0).unwrap();
        read.write(&mut wrote.1).unwrap();
        assert_eq!(wrote.0, wrote.1);

        // Of other rows (another count): built again.
        let fewer = a.get_or_build(1000, DIM, build).unwrap();
        assert_eq!(fewer.1, Origin::Built);
        // Another header: built again, and the file is then of that header.
        let b = PartitionFile::new(dir.path(), b"library B".to_vec());
        assert_eq!(b.get_or_build(1500, DIM, build).unwrap().1, Origin::Built);
        assert_eq!(b.get_or_build(1500, DIM, build).unwrap().1, Origin::Read);
        assert_eq!(a.get_or_build(1500, DIM, build).unwrap().1, Origin::Built);
        assert_eq!(std::fs::read(a.path()).unwrap(), bytes);
        // A flipped bit in the probes, or a file cut short: built again, and saved whole.
        let mut flipped = bytes.clone();
        let at = bytes.len() - 100;
        flipped[at] ^= 1;
        std::fs::write(a.path(), &flipped).unwrap();
        assert_eq!(a.get_or_build(1500, DIM, build).unwrap().1, Origin::Built);
        assert_eq!(std::fs::read(a.path()).unwrap(), bytes);
        std::fs::write(a.path(), &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(a.get_or_build(1500, DIM, build).unwrap().1, Origin::Built);
        assert_eq!(std::fs::read(a.path()).unwrap(), bytes);
        // A damaged count of probe slots (the checksum comes last): the file runs out first, and
        // the partition is built again.
        let at = 12 + b"library A".len() + 8;
        let mut slots = bytes.clone();
        slots[at..at + 4].copy_from_slice(&60_000u32.to_le_bytes());
        std::fs::write(a.path(), &slots).unwrap();
        assert_eq!(a.get_or_build(1500, DIM, build).unwrap().1, Origin::Built);
        assert_eq!(std::fs::read(a.path()).unwrap(), bytes);
        // No temporary file is left beside it.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [LOCK_NAME, FILE_NAME]);
    }

    #[test]
    fn parts_started_at_once_build_it_once() {
        let rows = People::new(1500, 11).rows_f32();
        let dir = tempfile::tempdir().unwrap();
        let built = std::sync::atomic::AtomicUsize::new(0);
        let origins: Vec<Origin> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let file = PartitionFile::new(dir.path(), b"library A".to_vec());
                        let (_, origin) = file
                            .get_or_build(1500, DIM, || {
                                built.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                // Long enough that the others arrive while it builds.
                                std::thread::sleep(std::time::Duration::from_millis(300));
                                build(&rows)
                            })
                            .unwrap();
                        origin
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            origins.iter().filter(|&&o| o == Origin::Built).count(),
            1,
            "{origins:?}"
        );
    }
}
