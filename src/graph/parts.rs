//! Edges on disk. A full graph too large for memory is written as it is found and read back in
//! passes (DBSCAN reads it twice); the graph shared out over several machines is one such file
//! per part of the work, each written by its own process.
//!
//! A file is a header naming what it was computed for (opaque bytes: the caller's JSON), the
//! pairs `i < j` as two little-endian `u32` each (8 bytes an edge, no distance: clustering needs
//! only which faces are neighbours), and a footer with the count and a checksum. A part is written
//! to a temporary file beside its place and renamed there once synced, so a part killed midway
//! leaves no file, and one present is whole. Reading checks the count against the file's length
//! and the checksum at the end of each pass.
//!
//! Which part of the work a part does: [`Split`] deals the cells of the IVF partition (or the
//! tile pairs of the exact graph) to the parts by their cost, the same way in every process. The
//! parts share one partition through a file ([`PartitionFile`]): the first builds it, the others
//! read it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::ivf::{self, IvfParams, IvfStats, Partition};
use super::partition_file::{Origin, PartitionFile};
use super::source::{Control, GraphError, RowSource};
use super::{Edge, GraphBackend, Method};

const MAGIC: &[u8; 8] = b"VISAGEE1";
/// Count and checksum.
const FOOTER: usize = 16;
/// Pairs read or written at a time.
const CHUNK: usize = 64 * 1024;

/// A running checksum of the pairs (one multiply and rotate per pair).
#[derive(Clone, Copy)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Self {
        Checksum(0x243f_6a88_85a3_08d3)
    }

    fn add(&mut self, i: u32, j: u32) {
        let w = (i as u64) << 32 | j as u64;
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(27);
    }
}

/// Writes a file of pairs: to a temporary file beside `path`, renamed into place by
/// [`PairWriter::finish`]; or, [`PairWriter::scratch`], to an unnamed file that disappears with
/// the process.
pub struct PairWriter {
    out: BufWriter<File>,
    temp: Option<tempfile::TempPath>,
    path: PathBuf,
    count: u64,
    sum: Checksum,
}

impl PairWriter {
    /// A file to become `path` once finished, with this header.
    pub fn create(path: &Path, header: &[u8]) -> Result<Self, GraphError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".visage-edges-")
            .tempfile_in(dir)
            .map_err(|e| GraphError::io(path, e))?;
        let (file, temp) = temp.into_parts();
        Self::start(file, Some(temp), path.to_path_buf(), header)
    }

    /// An unnamed file in `dir` (deleted by the system when closed, even if the process is
    /// killed), for the edges of a one-machine run.
    pub fn scratch(dir: &Path, header: &[u8]) -> Result<Self, GraphError> {
        let file = tempfile::tempfile_in(dir).map_err(|e| GraphError::io(dir, e))?;
        Self::start(file, None, dir.join("(unnamed)"), header)
    }

    fn start(
        file: File,
        temp: Option<tempfile::TempPath>,
        path: PathBuf,
        header: &[u8],
    ) -> Result<Self, GraphError> {
        let mut out = BufWriter::with_capacity(CHUNK * 8, file);
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&(header.len() as u32).to_le_bytes());
        head.extend_from_slice(header);
        out.write_all(&head).map_err(|e| GraphError::io(&path, e))?;
        Ok(PairWriter {
            out,
            temp,
            path,
            count: 0,
            sum: Checksum::new(),
        })
    }

    /// Append pairs.
    pub fn push(&mut self, pairs: impl IntoIterator<Item = (u32, u32)>) -> Result<(), GraphError> {
        for (i, j) in pairs {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&i.to_le_bytes());
            b[4..].copy_from_slice(&j.to_le_bytes());
            self.out
                .write_all(&b)
                .map_err(|e| GraphError::io(&self.path, e))?;
            self.sum.add(i, j);
            self.count += 1;
        }
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    fn seal(&mut self) -> Result<(), GraphError> {
        let mut footer = [0u8; FOOTER];
        footer[..8].copy_from_slice(&self.count.to_le_bytes());
        footer[8..].copy_from_slice(&self.sum.0.to_le_bytes());
        let path = self.path.clone();
        let io = |e| GraphError::io(&path, e);
        self.out.write_all(&footer).map_err(io)?;
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_all().map_err(io)
    }

    /// Sync the file and move it into place (replacing an older one there).
    pub fn finish(mut self) -> Result<PathBuf, GraphError> {
        self.seal()?;
        let temp = self.temp.take().expect("a named file");
        temp.persist(&self.path)
            .map_err(|e| GraphError::io(&self.path, e.error))?;
        // The rename reaches the disk with the folder.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(self.path)
    }

    /// The file written so far, to read back (an unnamed file stays unnamed).
    pub fn into_reader(mut self) -> Result<PairFile, GraphError> {
        self.seal()?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| GraphError::io(&self.path, e.into_error()))?;
        PairFile::from_file(file, self.path.clone())
    }
}

/// What [`PairFile::pairs`] hands each chunk of pairs to.
pub type PairChunks<'a> = dyn FnMut(&[(u32, u32)]) -> Result<(), GraphError> + 'a;

/// A file of pairs, checked for length; [`PairFile::pairs`] reads it.
pub struct PairFile {
    file: File,
    path: PathBuf,
    header: Vec<u8>,
    count: u64,
    start: u64,
}

impl PairFile {
    pub fn open(path: &Path) -> Result<Self, GraphError> {
        let file = File::open(path).map_err(|e| GraphError::io(path, e))?;
        Self::from_file(file, path.to_path_buf())
    }

    fn from_file(mut file: File, path: PathBuf) -> Result<Self, GraphError> {
        let bad = |why: &str| GraphError::Parts {
            path: path.display().to_string(),
            why: why.to_string(),
        };
        let io = |e| GraphError::io(&path, e);
        let len = file.seek(SeekFrom::End(0)).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut head = [0u8; 12];
        if len < (12 + FOOTER) as u64 || file.read_exact(&mut head).is_err() || &head[..8] != MAGIC
        {
            return Err(bad("not a file of edges written by visage"));
        }
        let header_len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as u64;
        if 12 + header_len + FOOTER as u64 > len {
            return Err(bad("cut short (its header is incomplete)"));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io)?;
        let mut footer = [0u8; FOOTER];
        file.seek(SeekFrom::End(-(FOOTER as i64))).map_err(io)?;
        file.read_exact(&mut footer).map_err(io)?;
        let count = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
        let start = 12 + header_len;
        if start + count.saturating_mul(8) + FOOTER as u64 != len {
            return Err(bad(&format!(
                "{len} bytes do not hold the {count} edges its footer counts (cut short or \
                 damaged)"
            )));
        }
        Ok(PairFile {
            file,
            path,
            header,
            count,
            start,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer said it was computed for.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Edges.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Every pair, in chunks, in the order written; fails if the checksum does not match.
    pub fn pairs(&self, each: &mut PairChunks) -> Result<(), GraphError> {
        let io = |e| GraphError::io(&self.path, e);
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.start)).map_err(io)?;
        let mut reader = BufReader::with_capacity(CHUNK * 8, file);
        let mut bytes = vec![0u8; CHUNK * 8];
        let mut pairs = Vec::with_capacity(CHUNK);
        let mut sum = Checksum::new();
        let mut left = self.count;
        while left > 0 {
            let take = left.min(CHUNK as u64) as usize;
            reader.read_exact(&mut bytes[..take * 8]).map_err(io)?;
            pairs.clear();
            for b in bytes[..take * 8].chunks_exact(8) {
                let i = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
                let j = u32::from_le_bytes(b[4..].try_into().expect("4 bytes"));
                sum.add(i, j);
                pairs.push((i, j));
            }
            each(&pairs)?;
            left -= take as u64;
        }
        let mut footer = [0u8; FOOTER];
        reader.read_exact(&mut footer).map_err(io)?;
        if u64::from_le_bytes(footer[8..].try_into().expect("8 bytes")) != sum.0 {
            return Err(GraphError::Parts {
                path: self.path.display().to_string(),
                why: "its edges do not match its checksum (damaged)".into(),
            });
        }
        Ok(())
    }
}

/// Part `index` of `count` of some work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    pub index: u32,
    pub count: u32,
}

impl Split {
    /// The whole work, in one part.
    pub const WHOLE: Split = Split { index: 0, count: 1 };

    /// Which of the items (with these costs) this part takes: the items, most costly first, go
    /// each to the part with the least cost so far (ties: the lower part). Every part computes
    /// the same deal from the same costs.
    pub fn take(&self, costs: &[usize]) -> Vec<u32> {
        let mut order: Vec<u32> = (0..costs.len() as u32).collect();
        order.sort_by_key(|&c| (std::cmp::Reverse(costs[c as usize]), c));
        let mut load = vec![0usize; self.count as usize];
        let mut mine = Vec::new();
        for c in order {
            let part = (0..load.len())
                .min_by_key(|&p| (load[p], p))
                .expect("at least one part");
            load[part] += costs[c as usize].max(1);
            if part == self.index as usize {
                mine.push(c);
            }
        }
        mine.sort_unstable();
        mine
    }

    /// The file name of this part's edges.
    pub fn file_name(&self) -> String {
        format!("part-{:04}-of-{:04}.edges", self.index, self.count)
    }

    /// The part a file name of [`Self::file_name`] names.
    pub fn from_file_name(name: &str) -> Option<Split> {
        let rest = name.strip_prefix("part-")?.strip_suffix(".edges")?;
        let (i, n) = rest.split_once("-of-")?;
        let (index, count) = (i.parse().ok()?, n.parse().ok()?);
        (index < count).then_some(Split { index, count })
    }
}

impl PartialOrd for Split {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Split {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.count, self.index).cmp(&(other.count, other.index))
    }
}

/// What computing a part did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartReport {
    pub method: Method,
    pub split: Split,
    pub edges: u64,
    /// The IVF partition's figures (the approximate graph only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ivf: Option<IvfStats>,
    /// Whether the partition was built here or read from the parts' shared file (the approximate
    /// graph with a shared file only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<Origin>,
}

/// Part `split` of the full graph of `source` (pairs closer than `max_d2`, squared) by `method`,
/// handed to `sink` a batch at a time. Every part of a split computes the same partition (the IVF
/// graph) or sees the same tiles (the exact graphs) and takes its own share of them, so the parts
/// together hold each edge of the one-machine graph once. The exact graphs read rows in memory
/// ([`RowSource::in_memory`]); the approximate one streams any source.
#[allow(clippy::too_many_arguments)]
pub fn compute(
    backend: &GraphBackend,
    source: &dyn RowSource,
    max_d2: f32,
    method: Method,
    params: &IvfParams,
    split: Split,
    shared: Option<&PartitionFile>,
    memory: usize,
    sink: &mut dyn FnMut(&[Edge]) -> Result<(), GraphError>,
    ctl: &Control,
) -> Result<PartReport, GraphError> {
    let dim = source.dim();
    let mut report = PartReport {
        method,
        split,
        edges: 0,
        ivf: None,
        partition: None,
    };
    let mut counted = |e: &[Edge]| -> Result<(), GraphError> {
        report.edges += e.len() as u64;
        sink(e)
    };
    let mine = |k: usize| k % split.count as usize == split.index as usize;
    let in_memory = || {
        source.in_memory().ok_or_else(|| {
            GraphError::Source(format!("the {method:?} graph reads its rows in memory"))
        })
    };
    match (method, backend) {
        (Method::CpuApproximate, _) => {
            let mut stats = IvfStats::default();
            let mut build = || Partition::build(source, max_d2, params, ctl, &mut stats);
            let part = match shared {
                Some(file) => {
                    let (part, origin) = file.get_or_build(source.len(), dim, build)?;
                    report.partition = Some(origin);
                    part
                }
                None => build()?,
            };
            if report.partition == Some(Origin::Read) {
                part.describe(&mut stats);
            }
            let cells = split.take(&part.costs());
            ivf::search(
                source,
                &part,
                max_d2,
                &cells,
                memory,
                &mut counted,
                ctl,
                &mut stats,
            )?;
            report.ivf = Some(stats);
        }
        (Method::GpuExact, GraphBackend::Gpu(g)) => {
            let rows = in_memory()?;
            let mut failed = None;
            g.edges_into(
                rows,
                dim,
                max_d2,
                &mine,
                &mut |e| keep(&mut counted, &mut failed, e, ctl),
                &|done, total| {
                    (ctl.progress)(done, total);
                },
            )?;
            failed.map_or(Ok(()), Err)?;
        }
        _ => {
            let rows = in_memory()?;
            let mut failed = None;
            super::product::tile_pairs(
                rows,
                dim,
                max_d2,
                &mine,
                &mut |e| keep(&mut counted, &mut failed, e, ctl),
                ctl.progress,
            );
            failed.map_or(Ok(()), Err)?;
        }
    }
    ctl.check()?;
    Ok(report)
}

/// Hand `edges` on; `false` (stop) once that failed or a stop was asked for.
fn keep(
    sink: &mut dyn FnMut(&[Edge]) -> Result<(), GraphError>,
    failed: &mut Option<GraphError>,
    edges: &[Edge],
    ctl: &Control,
) -> bool {
    if let Err(e) = sink(edges).and_then(|()| ctl.check()) {
        *failed = Some(e);
    }
    failed.is_none()
}

/// Why a part cannot be used (`Err`), from its split and header.
pub type PartCheck<'a> = dyn Fn(Split, &[u8]) -> Result<(), String> + 'a;

/// The edges of a full graph on disk: the files of its parts (or the one file of a one-machine
/// run) and the few edges added after them in memory (the two-hop pass), read in passes.
pub struct Edges {
    files: Vec<PairFile>,
    extra: Vec<(u32, u32)>,
}

impl Edges {
    pub fn new(files: Vec<PairFile>) -> Self {
        Edges {
            files,
            extra: Vec::new(),
        }
    }

    /// The parts of a graph in `dir`: every `part-I-of-N.edges` there, which must be all `N` of one
    /// split. `check(part, header)` says why a part cannot be used (computed for another library or
    /// other settings). Refuses, naming every part missing or refused.
    pub fn open_parts(dir: &Path, check: &PartCheck) -> Result<Self, GraphError> {
        let entries = std::fs::read_dir(dir).map_err(|e| GraphError::io(dir, e))?;
        let mut found: Vec<(Split, PathBuf)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| GraphError::io(dir, e))?;
            let name = entry.file_name();
            if let Some(split) = name.to_str().and_then(Split::from_file_name) {
                found.push((split, entry.path()));
            }
        }
        let refuse = |why: String| GraphError::Parts {
            path: dir.display().to_string(),
            why,
        };
        let Some(count) = found.iter().map(|(s, _)| s.count).max() else {
            return Err(refuse(
                "no part of a graph here (part-I-of-N.edges, written by `visage cluster \
                 --graph-shard I/N --graphs DIR`)"
                    .into(),
            ));
        };
        let mut problems = Vec::new();
        if let Some((other, _)) = found.iter().find(|(s, _)| s.count != count) {
            problems.push(format!(
                "parts of two splits ({} and {count} parts): keep the files of one",
                other.count
            ));
        }
        found.retain(|(s, _)| s.count == count);
        found.sort();
        let missing: Vec<String> = (0..count)
            .filter(|&i| !found.iter().any(|(s, _)| s.index == i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "part {} of {count} missing (compute it: visage cluster --graph-shard I/{count} \
                 --graphs {})",
                missing.join(", "),
                dir.display()
            ));
        }
        let mut files = Vec::new();
        for (split, path) in found {
            match PairFile::open(&path) {
                Ok(f) => match check(split, f.header()) {
                    Ok(()) => files.push(f),
                    Err(why) => problems.push(format!("{}: {why}", path.display())),
                },
                Err(e) => problems.push(e.to_string()),
            }
        }
        if !problems.is_empty() {
            return Err(refuse(problems.join("; ")));
        }
        Ok(Edges::new(files))
    }

    /// Edges, those added included.
    pub fn count(&self) -> u64 {
        self.files.iter().map(|f| f.count()).sum::<u64>() + self.extra.len() as u64
    }

    /// Bytes of the files.
    pub fn file_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| 8 * f.count() + f.header().len() as u64 + 28)
            .sum()
    }

    /// Every pair, a chunk at a time: the files', then those added.
    pub fn pairs(&self, each: &mut PairChunks) -> Result<(), GraphError> {
        for f in &self.files {
            f.pairs(each)?;
        }
        for chunk in self.extra.chunks(CHUNK) {
            each(chunk)?;
        }
        Ok(())
    }

    /// Each row's degree (of `n` rows).
    pub fn degrees(&self, n: usize) -> Result<Vec<u32>, GraphError> {
        let mut degree = vec![0u32; n];
        self.pairs(&mut |chunk| {
            for &(i, j) in chunk {
                if i as usize >= n || j as usize >= n {
                    return Err(GraphError::Source(format!(
                        "an edge ({i}, {j}) outside the graph's {n} rows"
                    )));
                }
                degree[i as usize] += 1;
                degree[j as usize] += 1;
            }
            Ok(())
        })?;
        Ok(degree)
    }

    /// The approximate graph's second pass ([`ivf::two_hop`]) over these edges, with `degree`
    /// ([`Self::degrees`]), which is brought up to date with the edges it adds.
    pub fn two_hop(
        &mut self,
        source: &dyn RowSource,
        degree: &mut [u32],
        params: &IvfParams,
        max_d2: f32,
        ctl: &Control,
    ) -> Result<usize, GraphError> {
        if params.refine_degree == 0 {
            return Ok(0);
        }
        let lists = ivf::low_degree_lists(degree, params.refine_degree, &mut |each| {
            self.pairs(&mut |chunk| {
                for &(i, j) in chunk {
                    each(i, j);
                }
                Ok(())
            })
        })?;
        let added = ivf::two_hop(source, &lists, max_d2, ctl)?;
        for e in &added {
            degree[e.i as usize] += 1;
            degree[e.j as usize] += 1;
        }
        self.extra.extend(added.iter().map(|e| (e.i, e.j)));
        Ok(added.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(f: &PairFile) -> Result<Vec<(u32, u32)>, GraphError> {
        let mut out = Vec::new();
        f.pairs(&mut |p| {
            out.extend_from_slice(p);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn files_read_back_whole_and_refuse_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part-0001-of-0002.edges");
        let pairs: Vec<(u32, u32)> = (0..200_000u32).map(|k| (k / 3, k + 7)).collect();
        let mut w = PairWriter::create(&path, b"{\"for\":1}").unwrap();
        w.push(pairs.iter().copied()).unwrap();
        // Nothing at the path until it is finished.
        assert!(!path.exists());
        assert_eq!(w.finish().unwrap(), path);
        let f = PairFile::open(&path).unwrap();
        assert_eq!(f.header(), b"{\"for\":1}");
        assert_eq!(f.count(), pairs.len() as u64);
        assert_eq!(read_all(&f).unwrap(), pairs);
        // Read twice: the same.
        assert_eq!(read_all(&f).unwrap(), pairs);
        // Only the finished file is left in the folder.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);

        // Cut short: refused on opening.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let err = PairFile::open(&path).err().unwrap().to_string();
        assert!(err.contains("cut short"), "{err}");
        // A flipped bit: refused by the checksum.
        let mut flipped = bytes.clone();
        flipped[5000] ^= 4;
        std::fs::write(&path, &flipped).unwrap();
        let err = read_all(&PairFile::open(&path).unwrap()).err().unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");
        std::fs::write(&path, b"hello").unwrap();
        assert!(PairFile::open(&path).is_err());

        // An unnamed scratch file reads back the same.
        let mut w = PairWriter::scratch(dir.path(), b"").unwrap();
        w.push(pairs.iter().copied()).unwrap();
        assert_eq!(read_all(&w.into_reader().unwrap()).unwrap(), pairs);
    }

    #[test]
    fn parts_take_every_item_once_and_about_even_work() {
        let costs: Vec<usize> = (0..500).map(|k| (k * 7919) % 1000 + 1).collect();
        let total: usize = costs.iter().sum();
        let mut seen = vec![0; costs.len()];
        for index in 0..4 {
            let mine = Split { index, count: 4 }.take(&costs);
            let work: usize = mine.iter().map(|&c| costs[c as usize]).sum();
            assert!(work.abs_diff(total / 4) < total / 50, "{work} of {total}");
            for c in mine {
                seen[c as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        assert_eq!(Split::WHOLE.take(&costs).len(), costs.len());
        let two = Split { index: 2, count: 4 };
        assert_eq!(two.file_name(), "part-0002-of-0004.edges");
        assert_eq!(Split::from_file_name(&two.file_name()), Some(two));
        for bad in ["part-0004-of-0004.edges", "part-1-of-2.edge", "x.edges"] {
            assert_eq!(Split::from_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_set_of_parts_is_whole_and_of_one_library_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |index: u32, count: u32, header: &[u8], pairs: &[(u32, u32)]| {
            let split = Split { index, count };
            let mut w = PairWriter::create(&dir.path().join(split.file_name()), header).unwrap();
            w.push(pairs.iter().copied()).unwrap();
            w.finish().unwrap();
        };
        let ours = |_: Split, h: &[u8]| {
            if h == b"library A" {
                Ok(())
            } else {
                Err(format!("computed for {}", String::from_utf8_lossy(h)))
            }
        };
        write(0, 3, b"library A", &[(0, 1), (1, 2)]);
        write(2, 3, b"library A", &[(3, 4)]);
        let err = Edges::open_parts(dir.path(), &ours)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("part 1 of 3 missing"), "{err}");
        write(1, 3, b"library B", &[(2, 3)]);
        let err = Edges::open_parts(dir.path(), &ours)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("part-0001-of-0003.edges: computed for library B"),
            "{err}"
        );
        write(1, 3, b"library A", &[(2, 3)]);
        let mut edges = Edges::open_parts(dir.path(), &ours).unwrap();
        assert_eq!(edges.count(), 4);
        let degree = edges.degrees(6).unwrap();
        assert_eq!(degree, vec![1, 2, 2, 2, 1, 0]);
        // A part of another split beside them is named.
        write(0, 2, b"library A", &[]);
        let err = Edges::open_parts(dir.path(), &ours)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("two splits"), "{err}");
        edges.extra.push((4, 5));
        let mut all = Vec::new();
        edges
            .pairs(&mut |c| {
                all.extend_from_slice(c);
                Ok(())
            })
            .unwrap();
        all.sort();
        assert_eq!(all, vec![(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
    }
}
