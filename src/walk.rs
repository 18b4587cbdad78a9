//! Finding the files of a library: expands the paths a user gives (files or folders, recursively)
//! into every file under them, sorted, each with what it is to visage by its name and its
//! neighbours' names: a photo, a RAW, a video, the video of a Live Photo, a RAW stacked with its
//! JPEG or HEIF, or a kind visage does not read. It does not open or decode anything.
//!
//! Files that are not worth a word are left out here, silently (see [`is_quiet`]): hidden files
//! and folders, thumbnail folders of NAS boxes, sidecars and edit records (`.xmp`, `.aae`,
//! `.json`...), system files (`Thumbs.db`, `desktop.ini`), documents and audio. Every other file
//! is listed, so `index` can say why it did not read one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use walkdir::WalkDir;

/// Still photos visage decodes (case-insensitive): what the image crate reads, HEIF (HEIC, AVIF)
/// through libheif.
pub const PHOTO_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "tif", "tiff", "bmp", "gif", "heic", "heif",
    "hif", "avif",
];

/// Camera RAW files (read through their embedded preview, or developed).
pub const RAW_EXTENSIONS: &[&str] = &[
    "dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "raf", "orf", "rw2", "rwl",
    "pef", "srw", "3fr", "iiq", "erf", "kdc", "dcr", "mrw", "mos", "mef",
];

/// Videos, read through the `ffmpeg` program.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "qt", "3gp", "3g2", "mkv", "avi", "webm", "mts", "m2ts", "mpg", "mpeg",
    "wmv", "asf", "ogv", "flv", "f4v", "vob", "divx", "dv", "mxf", "rm", "rmvb",
];

/// Pictures visage has no reader for: layered and vector images, other still formats. Named "not a
/// kind visage reads" by their name alone (a file of a name visage does not know at all is looked
/// into first: it may be a photo).
pub const UNREAD_EXTENSIONS: &[&str] = &[
    "psd", "psb", "xcf", "kra", "ora", "svg", "svgz", "ai", "eps", "ps", "cdr", "afphoto", "jxl",
    "jp2", "j2k", "jpx", "jxr", "wdp", "hdp", "ico", "icns", "tga", "exr", "hdr", "pcx", "ppm",
    "pgm", "pbm", "dds", "emf", "wmf", "x3f", "swf", "insv", "insp", "gpr", "zip", "rar", "7z",
    "tar", "gz",
];

/// Files beside photos that hold no picture of their own: sidecars and edit records of photo
/// programs, thumbnails cameras write beside videos, system and database files, documents,
/// audio. Left out without a word.
pub const QUIET_EXTENSIONS: &[&str] = &[
    // Sidecars and edit records (Lightroom, darktable, digiKam, RawTherapee, DxO, ON1, Capture
    // One, Apple Photos), Google Takeout's metadata, camera video thumbnails and proxies.
    "xmp",
    "aae",
    "pp3",
    "dop",
    "on1",
    "cos",
    "cof",
    "acr",
    "arp",
    "json",
    "thm",
    "lrv",
    "xml",
    "ithmb",
    "mie", // System, database and link files (Thumbs.db, desktop.ini, visage's own library).
    "db",
    "db-wal",
    "db-shm",
    "db-journal",
    "sqlite",
    "sqlite3",
    "ini",
    "lnk",
    "url",
    "nomedia",
    "tmp",
    "part",
    "lock",
    "log",
    "md5",
    "sha1",
    "sha256",
    "sfv",
    "par2",
    // Documents and audio (voice memos, soundtracks): no faces in them.
    "txt",
    "md",
    "pdf",
    "html",
    "htm",
    "csv",
    "rtf",
    "doc",
    "docx",
    "odt",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "mp3",
    "m4a",
    "wav",
    "aac",
    "flac",
    "ogg",
    "opus",
    "amr",
    "wma",
    "aif",
    "aiff",
];

/// Folders of thumbnails or trash that NAS boxes and systems keep beside photos (their pictures
/// are copies): never walked into. Hidden folders (a leading `.`) are not walked into either.
pub const QUIET_FOLDERS: &[&str] = &[
    "@eaDir",
    "#recycle",
    "#snapshot",
    "$RECYCLE.BIN",
    "lost+found",
];

/// What a file is to visage by its name and its neighbours' (its role in the library; what it
/// holds is told from its content when it is read, see `photo::kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A still photo (JPEG, PNG, WebP, TIFF, BMP, GIF, HEIC/HEIF, AVIF).
    Photo,
    /// A camera RAW.
    Raw,
    /// A video: faces are looked for in stills at a few moments of it.
    Video,
    /// A video beside a HEIC or JPEG of the same name: the two are one Live Photo, whose faces
    /// are the still's.
    LivePhotoVideo,
    /// A RAW beside a JPEG or HEIF of the same name in one folder: the two are one photo, read
    /// from the JPEG or HEIF (as PhotoPrism stacks them).
    StackedRaw,
    /// Media visage has no reader for (`.psd`, `.svg`, `.jxl`: [`UNREAD_EXTENSIONS`]).
    Unread,
    /// A name visage does not know, or none (its content may still be a photo: `index` looks).
    Other,
}

/// One file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub role: Role,
    /// The still of a Live Photo's video, the JPEG of a stacked RAW.
    pub partner: Option<PathBuf>,
    /// Whether the file is a symbolic link, or a file named explicitly: its path may not be
    /// where it really is (a walk of a canonical folder gives canonical paths for the rest).
    pub link: bool,
}

/// A file's extension in lower case ("" when it has none).
pub fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn one_of(ext: &str, list: &[&str]) -> bool {
    list.contains(&ext)
}

/// What a file is by its name alone (before pairing with its neighbours).
pub fn role_of(path: &Path) -> Role {
    let ext = extension(path);
    if one_of(&ext, PHOTO_EXTENSIONS) {
        Role::Photo
    } else if one_of(&ext, RAW_EXTENSIONS) {
        Role::Raw
    } else if one_of(&ext, VIDEO_EXTENSIONS) {
        Role::Video
    } else if one_of(&ext, UNREAD_EXTENSIONS) {
        Role::Unread
    } else {
        Role::Other
    }
}

/// A still photo (not a RAW, not a video) by its name.
pub fn is_photo(path: &Path) -> bool {
    role_of(path) == Role::Photo
}

/// Not worth a word: a hidden file, or a sidecar, system file, document or audio file.
pub fn is_quiet(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    hidden || one_of(&extension(path), QUIET_EXTENSIONS)
}

fn is_quiet_folder(name: &str) -> bool {
    name.starts_with('.') || QUIET_FOLDERS.iter().any(|q| q.eq_ignore_ascii_case(name))
}

/// The paths that do not exist. One that cannot be checked (a folder on the way that cannot be
/// read) is not counted: walking it reports why.
pub fn missing(paths: &[PathBuf]) -> impl Iterator<Item = &PathBuf> {
    paths.iter().filter(|p| matches!(p.try_exists(), Ok(false)))
}

/// One entry per file found under `paths` (quiet files left out), or an error naming a path that
/// could not be walked; sorted by path within each of `paths`. A file named explicitly is kept
/// whatever its name (a quiet one as [`Role::Other`], so its content is looked into) and is never
/// paired: the user asked for it.
pub fn files(paths: &[PathBuf]) -> Vec<Result<Found, (PathBuf, String)>> {
    let mut out = Vec::new();
    for root in paths {
        if root.is_file() {
            out.push(Ok(Found {
                path: root.clone(),
                role: if is_quiet(root) {
                    Role::Other
                } else {
                    role_of(root)
                },
                partner: None,
                link: true,
            }));
            continue;
        }
        if !root.exists() {
            out.push(Err((root.clone(), "no such file or folder".to_string())));
            continue;
        }
        let mut found: Vec<Found> = Vec::new();
        let mut errors: Vec<(PathBuf, String)> = Vec::new();
        // walkdir does not follow symlinks by default, so there are no loops.
        let walk = WalkDir::new(root).into_iter().filter_entry(|e| {
            e.depth() == 0
                || !e.file_type().is_dir()
                || !is_quiet_folder(&e.file_name().to_string_lossy())
        });
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_file() && !is_quiet(e.path()) => found.push(Found {
                    role: role_of(e.path()),
                    link: e.path_is_symlink(),
                    path: e.into_path(),
                    partner: None,
                }),
                Ok(_) => {}
                Err(e) => {
                    let p = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    errors.push((p, e.to_string()));
                }
            }
        }
        pair(&mut found);
        let mut all: Vec<Result<Found, (PathBuf, String)>> = found
            .into_iter()
            .map(Ok)
            .chain(errors.into_iter().map(Err))
            .collect();
        all.sort_by(|a, b| {
            let key = |r: &Result<Found, (PathBuf, String)>| match r {
                Ok(f) => f.path.clone(),
                Err((p, _)) => p.clone(),
            };
            key(a).cmp(&key(b))
        });
        out.extend(all);
    }
    out
}

/// The still photos (and RAWs) under `paths`, as [`files`] finds them: videos, stacked RAWs and
/// kinds visage does not read left out (a file named explicitly is kept whatever it is, so the
/// user sees why it fails).
pub fn photos(paths: &[PathBuf]) -> Vec<Result<PathBuf, (PathBuf, String)>> {
    files(paths)
        .into_iter()
        .filter_map(|entry| match entry {
            Ok(f) if matches!(f.role, Role::Photo | Role::Raw) => Some(Ok(f.path)),
            Ok(f) if paths.contains(&f.path) => Some(Ok(f.path)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect()
}

/// Stills that make a Live Photo with a video of the same name.
const LIVE_STILLS: &[&str] = &["heic", "heif", "jpg", "jpeg"];
/// Videos of Live Photos: Apple's MOV, and the MP4 Google Takeout turns them into.
const LIVE_VIDEOS: &[&str] = &["mov", "mp4"];
/// Stills a RAW is stacked with: the camera's own JPEG or HEIF of the same shot.
const RAW_TWINS: &[&str] = &["jpg", "jpeg", "heic", "heif", "hif"];

/// Files of one folder with the same name but for the extension (compared without case) are
/// one shot: a video beside a HEIC or JPEG is a Live Photo's, a RAW beside a JPEG or HEIF is
/// stacked with it.
fn pair(found: &mut [Found]) {
    let mut shots: HashMap<(PathBuf, String), Vec<usize>> = HashMap::new();
    for (i, f) in found.iter().enumerate() {
        let (Some(dir), Some(stem)) = (f.path.parent(), f.path.file_stem()) else {
            continue;
        };
        let stem = stem.to_string_lossy().to_lowercase();
        shots.entry((dir.to_path_buf(), stem)).or_default().push(i);
    }
    for members in shots.values().filter(|m| m.len() > 1) {
        let mut members = members.clone();
        members.sort_by(|&a, &b| found[a].path.cmp(&found[b].path));
        let first_with = |exts: &[&str]| {
            members.iter().copied().find(|&i| {
                found[i].role == Role::Photo && exts.contains(&extension(&found[i].path).as_str())
            })
        };
        let still = first_with(LIVE_STILLS);
        let twin = first_with(RAW_TWINS);
        for &i in &members {
            let ext = extension(&found[i].path);
            let partner = match found[i].role {
                Role::Video if LIVE_VIDEOS.contains(&ext.as_str()) => {
                    still.map(|s| (Role::LivePhotoVideo, s))
                }
                Role::Raw => twin.map(|t| (Role::StackedRaw, t)),
                _ => None,
            };
            if let Some((role, with)) = partner {
                found[i].role = role;
                found[i].partner = Some(found[with].path.clone());
            }
        }
    }
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

    fn touch(dir: &Path, names: &[&str]) {
        for name in names {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
    }

    #[test]
    fn every_file_is_classified_and_pairs_are_found() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "IMG_1.HEIC",
                "IMG_1.MOV",
                "IMG_2.JPG",
                "IMG_2.CR2",
                "IMG_2.CR2.xmp",
                "img_3.jpeg",
                "IMG_3.mov",
                "IMG_4.NEF",
                "clip.mp4",
                "other/clip.jpg",
                "art.psd",
                "notes.txt",
                "IMG_1.AAE",
                "takeout.json",
                "Thumbs.db",
                ".DS_Store",
                ".hidden/x.jpg",
                "@eaDir/IMG_2.JPG/SYNOPHOTO_THUMB_XL.jpg",
                "noextension",
            ],
        );
        let found: Vec<(String, Role, Option<String>)> = files(&[dir.path().to_path_buf()])
            .into_iter()
            .map(|f| {
                let f = f.unwrap();
                let rel = |p: &Path| p.strip_prefix(dir.path()).unwrap().display().to_string();
                (rel(&f.path), f.role, f.partner.as_deref().map(rel))
            })
            .collect();
        let s = |p: &str| Some(p.to_string());
        assert_eq!(
            found,
            [
                ("IMG_1.HEIC".into(), Role::Photo, None),
                ("IMG_1.MOV".into(), Role::LivePhotoVideo, s("IMG_1.HEIC")),
                ("IMG_2.CR2".into(), Role::StackedRaw, s("IMG_2.JPG")),
                ("IMG_2.JPG".into(), Role::Photo, None),
                ("IMG_3.mov".into(), Role::LivePhotoVideo, s("img_3.jpeg")),
                ("IMG_4.NEF".into(), Role::Raw, None),
                ("art.psd".into(), Role::Unread, None),
                ("clip.mp4".into(), Role::Video, None),
                ("img_3.jpeg".into(), Role::Photo, None),
                ("noextension".into(), Role::Other, None),
                ("other/clip.jpg".into(), Role::Photo, None),
            ]
        );
        // A file named explicitly is kept whatever it is, and never paired.
        let named = [dir.path().join("notes.txt"), dir.path().join("IMG_1.MOV")];
        let roles: Vec<Role> = files(&named).into_iter().map(|f| f.unwrap().role).collect();
        assert_eq!(roles, [Role::Other, Role::Video]);
        assert_eq!(photos(&named[..1]), [Ok(named[0].clone())]);
    }
}
