//! Files written whole or not at all: the bytes go to a temporary file in the target's folder
//! (tempfile's `NamedTempFile`), which is synced and then renamed over the target. A reader sees
//! the old file or the new one, never half of one; a failure or a crash leaves no file under the
//! target's name (the temporary one is removed when it can be).

use std::io::{self, Write};
use std::path::Path;

/// Write `bytes` to `path` atomically. A file already there keeps its permissions; a new one gets
/// those a plain create gives (read-write for all, less the umask).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

/// Write to `path` atomically what `fill` writes (through a buffer), as [`write`] does.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode asked for at creation, from which the system takes the umask away (a
        // temporary file would be the owner's alone).
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(dir)?;
    {
        let mut out = io::BufWriter::with_capacity(1 << 20, &mut file);
        fill(&mut out)?;
        out.flush()?;
    }
    if let Ok(old) = std::fs::metadata(path) {
        file.as_file().set_permissions(old.permissions())?;
    }
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_keeps_its_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.xmp");
        write(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            let plain = dir.path().join("plain");
            std::fs::write(&plain, b"").unwrap();
            assert_eq!(mode(&path), mode(&plain), "the mode a plain create gives");
            std::fs::remove_file(&plain).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            write(&path, b"second").unwrap();
            assert_eq!(mode(&path), 0o640);
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Nothing is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.xmp"]);
        // A folder that cannot take the file: an error, and nothing written.
        assert!(write(&dir.path().join("no/such/folder/b"), b"x").is_err());
    }
}
