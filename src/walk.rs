//! Finding photo files: expands the paths a user gives (files or folders, recursively) into a
//! sorted list of files with an image extension. It does not open or decode them.

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

/// Extensions visage tries to decode (case-insensitive).
pub const EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "png", "webp", "tif", "tiff", "bmp", "gif",
];

pub fn is_photo(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The paths that do not exist. One that cannot be checked (a folder on the way that cannot be
/// read) is not counted: walking it reports why.
pub fn missing(paths: &[PathBuf]) -> impl Iterator<Item = &PathBuf> {
    paths.iter().filter(|p| matches!(p.try_exists(), Ok(false)))
}

/// One entry per photo found, or an error naming a path that could not be walked. A file named
/// explicitly is kept whatever its extension, so the user sees why it fails.
pub fn photos(paths: &[PathBuf]) -> Vec<Result<PathBuf, (PathBuf, String)>> {
    let mut out = Vec::new();
    for root in paths {
        if root.is_file() {
            out.push(Ok(root.clone()));
            continue;
        }
        if !root.exists() {
            out.push(Err((root.clone(), "no such file or folder".to_string())));
            continue;
        }
        let mut found: Vec<_> = Vec::new();
        // walkdir does not follow symlinks by default, so there are no loops.
        for entry in WalkDir::new(root) {
            match entry {
                Ok(e) if e.file_type().is_file() && is_photo(e.path()) => {
                    found.push(Ok(e.into_path()))
                }
                Ok(_) => {}
                Err(e) => {
                    let p = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    found.push(Err((p, e.to_string())));
                }
            }
        }
        found.sort_by(|a, b| {
            let key = |r: &Result<PathBuf, (PathBuf, String)>| match r {
                Ok(p) | Err((p, _)) => p.clone(),
            };
            key(a).cmp(&key(b))
        });
        out.extend(found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_paths_are_found_before_walking() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let paths = vec![
            here.join("src"),
            here.join("no/such/folder"),
            here.join("Cargo.toml"),
            PathBuf::from("/no/such/photo.jpg"),
        ];
        let missing: Vec<_> = missing(&paths).collect();
        assert_eq!(missing, [&paths[1], &paths[3]]);
        assert_eq!(
            photos(&paths[3..]),
            [Err((
                paths[3].clone(),
                "no such file or folder".to_string()
            ))]
        );
    }
}
