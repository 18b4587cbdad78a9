//! Stills from videos, through the `ffmpeg` program: the one on `PATH`, or the static build in
//! the `imageio-ffmpeg` wheel, fetched once into the models folder by [`crate::wheel`].
//!
//! [`Ffmpeg::video`] looks at a few moments of a video (see [`moments`]), takes the first key
//! frame at or after each, and returns each still as a [`Photo`] ready for detection: taken with
//! ffmpeg's own seeking, rotation and scaling (at most [`DETECT_SIDE`] a side, so memory stays
//! bounded whatever the video's size), its boxes mapping to the video's full frame as ffmpeg
//! shows it. [`Ffmpeg::still`] takes one still again at the moment it was taken (the review
//! page's thumbnails, through [`super::Reader::still`]). Every run of ffmpeg has a time limit,
//! and what it writes a size limit; a video ffmpeg cannot read is an error naming ffmpeg's
//! reason. Which files are videos is [`super::kind`]'s to say.
//!
//! It must not detect anything: stills in, stills out.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use image::{DynamicImage, RgbImage};
use thiserror::Error;

use super::{DETECT_SIDE, Photo};
use crate::wheel::{Cache, WheelFile};

/// Look for faces every this many seconds of a video...
pub const EVERY_SECONDS: f64 = 10.0;
/// ...in at most this many stills (a short clip still gets one).
pub const MAX_STILLS: usize = 8;
/// The longest one run of ffmpeg may take (a probe, or one still).
pub const TIME_LIMIT: Duration = Duration::from_secs(60);
/// The largest still taken for a thumbnail (longest side), so that an 8K video costs no more
/// memory than a photo.
pub const THUMB_SIDE: u32 = 2560;

/// The static ffmpeg of the `imageio-ffmpeg` wheel (Linux x86-64), used where the system has
/// none.
pub const FFMPEG_WHEEL: WheelFile = WheelFile {
    name: "ffmpeg",
    what: "the ffmpeg program, a static build (LGPL/GPL), for stills from videos",
    requirement: "imageio-ffmpeg==0.8.1",
    member: "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v9.0.2",
    file: "runtime/ffmpeg-9.0.2/ffmpeg",
    sha256: "0d709a0bed1a43f24cd2c420878c63afea4580671b6949ad19ed124572f3bc3d",
    size: 172_692_552,
};

#[derive(Debug, Error)]
pub enum VideoError {
    /// No ffmpeg to run: what to install.
    #[error("ffmpeg not found: install ffmpeg ({0})")]
    NoFfmpeg(String),
    #[error("cannot run ffmpeg ({program}): {why}")]
    Run { program: String, why: String },
    #[error("ffmpeg cannot read it: {0}")]
    Unreadable(String),
    #[error("ffmpeg took longer than {} s and was stopped", TIME_LIMIT.as_secs())]
    TooSlow,
    #[error("ffmpeg gave no still at {at:.1} s: {why}")]
    NoStill { at: f64, why: String },
}

/// The ffmpeg program visage runs.
#[derive(Debug, Clone)]
pub struct Ffmpeg {
    program: PathBuf,
}

/// One still of a video.
#[derive(Debug)]
pub struct Still {
    pub rgb: RgbImage,
    /// The full frame as ffmpeg shows it: `rgb` is a scaled copy of it.
    pub frame: (u32, u32),
}

/// A video's facts and the stills taken from it.
#[derive(Debug)]
pub struct Video {
    /// The full frame as ffmpeg shows it (rotation applied): the pixels face boxes are in.
    pub width: u32,
    pub height: u32,
    /// Seconds; `None` when the container does not say.
    pub duration: Option<f64>,
    /// `(moment in seconds, still)`, in time order.
    pub stills: Vec<(f64, Photo)>,
}

impl Ffmpeg {
    /// `ffmpeg` on `PATH`, else the static build from the wheel in `cache` (fetched on first use
    /// with pip, on Linux x86-64). The error says what to install.
    pub fn find(cache: &Cache) -> Result<Self, VideoError> {
        if runs(Path::new("ffmpeg")) {
            return Ok(Ffmpeg {
                program: PathBuf::from("ffmpeg"),
            });
        }
        if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
            return Err(VideoError::NoFfmpeg(
                "none on PATH, and no static build for this platform".into(),
            ));
        }
        let program = cache.get(&FFMPEG_WHEEL).map_err(|e| {
            VideoError::NoFfmpeg(format!(
                "none on PATH, and fetching {} failed: {e}",
                FFMPEG_WHEEL.requirement
            ))
        })?;
        if !runs(&program) {
            return Err(VideoError::NoFfmpeg(format!(
                "{} does not run",
                program.display()
            )));
        }
        Ok(Ffmpeg { program })
    }

    /// The program run (`ffmpeg`, or the fetched one's path).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The video's size and duration, and its stills near [`moments`] of it, each at most
    /// [`DETECT_SIDE`] a side: the first key frame at or after each moment (a key frame is
    /// decoded alone, and is the sharpest picture of its stretch), or the frame at the moment
    /// where no key frame follows it. Each still's moment is the time of the frame taken, so
    /// [`Ffmpeg::still`] takes it again; two moments that fall on one key frame give one still.
    pub fn video(&self, path: &Path) -> Result<Video, VideoError> {
        let probe = self.probe(path)?;
        let mut stills: Vec<(f64, Photo)> = Vec::new();
        for at in moments(probe.duration) {
            let (at, rgb) = match self.frame(path, at, DETECT_SIDE, true)? {
                Some(still) => still,
                None => match self.frame(path, at, DETECT_SIDE, false)? {
                    Some(still) => still,
                    None => {
                        return Err(VideoError::NoStill {
                            at,
                            why: "no picture at that moment".into(),
                        });
                    }
                },
            };
            if stills.last().is_some_and(|(last, _)| *last >= at) {
                continue;
            }
            let mut photo = Photo::from_dynamic(DynamicImage::ImageRgb8(rgb)).map_err(|e| {
                VideoError::NoStill {
                    at,
                    why: e.to_string(),
                }
            })?;
            // The still is the full frame scaled down: boxes map back to the full frame.
            let (w, h) = probe.frame_for(photo.width, photo.height);
            photo.original_width = w;
            photo.original_height = h;
            stills.push((at, photo));
        }
        let (width, height) = match stills.first() {
            Some((_, p)) => (p.original_width, p.original_height),
            None => (probe.width, probe.height),
        };
        Ok(Video {
            width,
            height,
            duration: probe.duration,
            stills,
        })
    }

    /// The still at `at` seconds (a moment [`Ffmpeg::video`] gave), the full frame scaled to at
    /// most `side(longest side of the frame)` a side, and never more than [`THUMB_SIDE`].
    pub fn still(
        &self,
        path: &Path,
        at: f64,
        side: impl FnOnce(u32) -> u32,
    ) -> Result<Still, VideoError> {
        let probe = self.probe(path)?;
        let side = side(probe.width.max(probe.height)).clamp(1, THUMB_SIDE);
        match self.frame(path, at, side, false)? {
            Some((_, rgb)) => Ok(Still {
                frame: probe.frame_for(rgb.width(), rgb.height()),
                rgb,
            }),
            None => Err(VideoError::NoStill {
                at,
                why: "no picture at that moment".into(),
            }),
        }
    }

    /// What ffmpeg says of the input (it prints it, then stops: no output was asked for).
    fn probe(&self, path: &Path) -> Result<Probe, VideoError> {
        let mut cmd = self.command();
        cmd.args(["-v", "info", "-i"]).arg(path);
        let out = run(cmd, 1 << 16, &self.program)?;
        let text = String::from_utf8_lossy(&out.stderr);
        let probe = parse_probe(&text).ok_or_else(|| {
            VideoError::Unreadable(last_line(&text).unwrap_or("no video stream").to_string())
        })?;
        Ok(probe)
    }

    /// One still at `at` seconds (with `key`: the first key frame at or after it), scaled by
    /// ffmpeg to at most `side` a side, as RGB, with the time of the frame taken; `None` when
    /// there is no such frame.
    fn frame(
        &self,
        path: &Path,
        at: f64,
        side: u32,
        key: bool,
    ) -> Result<Option<(f64, RgbImage)>, VideoError> {
        let mut cmd = self.command();
        // Frames before the moment are dropped (accurate seeking); with `key`, only key frames
        // are decoded at all, and showinfo says which one came out.
        if key {
            cmd.args(["-v", "info", "-nostats", "-skip_frame", "nokey"]);
        } else {
            cmd.args(["-v", "error"]);
        }
        let scale = format!(
            "scale=w='min({side},iw)':h='min({side},ih)':force_original_aspect_ratio=decrease"
        );
        cmd.args(["-ss", &format!("{at:.3}"), "-i"])
            .arg(path)
            .args([
                "-map",
                "0:v:0",
                "-frames:v",
                "1",
                "-an",
                "-sn",
                "-dn",
                "-vf",
                &if key {
                    format!("showinfo,{scale}")
                } else {
                    scale
                },
                "-pix_fmt",
                "rgb24",
                "-c:v",
                "ppm",
                "-f",
                "image2pipe",
                "-",
            ]);
        let limit = side as usize * side as usize * 3 + 64;
        let out = run(cmd, limit, &self.program)?;
        let text = String::from_utf8_lossy(&out.stderr);
        if !out.ok {
            return Err(VideoError::Unreadable(
                last_line(&text).unwrap_or("ffmpeg failed").to_string(),
            ));
        }
        let Some(rgb) = parse_ppm(&out.stdout) else {
            return Ok(None);
        };
        let taken = match key {
            // Output times start at the moment sought; the frame's time is rounded down to the
            // millisecond, so seeking to it again finds this very frame first.
            true => match shown_at(&text) {
                Some(after) => ((at + after) * 1000.0 + 1e-6).floor() / 1000.0,
                None => return Ok(None),
            },
            false => at,
        };
        Ok(Some((taken, rgb)))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-nostdin", "-hide_banner"]);
        cmd
    }
}

/// The moments stills are taken at: one every [`EVERY_SECONDS`] (at most [`MAX_STILLS`], at
/// least one), each in the middle of its stretch of the video, so that a fade at either end is
/// never the still. A video of unknown length gives one still at its start.
pub fn moments(duration: Option<f64>) -> Vec<f64> {
    match duration {
        Some(d) if d.is_finite() && d > 0.0 => {
            let n = ((d / EVERY_SECONDS).ceil() as usize).clamp(1, MAX_STILLS);
            (0..n)
                .map(|i| (i as f64 + 0.5) * d / n as f64)
                .map(|t| (t * 1000.0).round() / 1000.0)
                .collect()
        }
        _ => vec![0.0],
    }
}

/// Whether the program answers `-version`.
fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What a run of ffmpeg gave.
struct Output {
    ok: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Run ffmpeg with [`TIME_LIMIT`], keeping at most `limit` bytes of what it writes (a still
/// larger than asked for is refused, never held).
fn run(mut cmd: Command, limit: usize, program: &Path) -> Result<Output, VideoError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| VideoError::Run {
            program: program.display().to_string(),
            why: e.to_string(),
        })?;
    let (mut stdout, mut stderr) = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let child = Arc::new(Mutex::new(child));
    // A watchdog stops ffmpeg at the time limit; reading ends when ffmpeg does.
    let (done, timed) = mpsc::channel::<()>();
    let watchdog = {
        let child = Arc::clone(&child);
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = timed.recv_timeout(TIME_LIMIT) {
                let _ = child.lock().map(|mut c| c.kill());
                return true;
            }
            false
        })
    };
    let errors = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(1 << 16).read_to_end(&mut buf);
        // Keep draining so ffmpeg never blocks on a full pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        buf
    });
    let mut out = Vec::new();
    let read = (&mut stdout).take(limit as u64 + 1).read_to_end(&mut out);
    let too_big = out.len() > limit;
    if too_big {
        let _ = child.lock().map(|mut c| c.kill());
    }
    let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    let status = child.lock().map(|mut c| c.wait());
    let _ = done.send(());
    let killed = watchdog.join().unwrap_or(false);
    let stderr = errors.join().unwrap_or_default();
    if killed {
        return Err(VideoError::TooSlow);
    }
    if too_big {
        return Err(VideoError::Unreadable(format!(
            "a still larger than {limit} bytes"
        )));
    }
    read.map_err(|e| VideoError::Run {
        program: program.display().to_string(),
        why: e.to_string(),
    })?;
    let ok = matches!(status, Ok(Ok(s)) if s.success());
    Ok(Output {
        ok,
        stdout: out,
        stderr,
    })
}

/// The time of the first frame showinfo described, seconds from the moment sought: its `pts`
/// in the filter's `time_base` (exact, where `pts_time` is printed to 6 digits).
fn shown_at(text: &str) -> Option<f64> {
    let lines = || text.lines().filter(|l| l.contains("showinfo"));
    let field = |line: &str, name: &str| -> Option<String> {
        let rest = line.split(name).nth(1)?.trim_start();
        Some(
            rest.split(|c: char| c.is_whitespace() || c == ',')
                .next()?
                .to_string(),
        )
    };
    let first = lines().find(|l| l.contains(" pts:"))?;
    let base = lines()
        .find_map(|l| field(l, "config in time_base:"))
        .and_then(|b| {
            let (num, den) = b.split_once('/')?;
            Some((num.parse::<f64>().ok()?, den.parse::<f64>().ok()?))
        })
        .filter(|(n, d)| *n > 0.0 && *d > 0.0);
    let t = match (
        base,
        field(first, " pts:").and_then(|p| p.parse::<i64>().ok()),
    ) {
        (Some((num, den)), Some(pts)) => pts as f64 * num / den,
        _ => field(first, "pts_time:")?.parse().ok()?,
    };
    (t.is_finite() && t >= 0.0).then_some(t)
}

/// The last line ffmpeg wrote (its reason, when it fails).
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// What the probe found: the first video stream's coded size and the duration.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Probe {
    width: u32,
    height: u32,
    duration: Option<f64>,
}

impl Probe {
    /// The full frame ffmpeg shows for a still of `w x h`: the coded size, turned when the still
    /// is (ffmpeg applies the video's rotation before scaling).
    fn frame_for(&self, w: u32, h: u32) -> (u32, u32) {
        let (cw, ch) = (self.width, self.height);
        if cw == 0 || ch == 0 {
            return (w, h);
        }
        if (w > h) != (cw > ch) && w != h && cw != ch {
            (ch, cw)
        } else {
            (cw, ch)
        }
    }
}

/// `Duration: 00:01:02.50` and the first `Stream ...: Video: ..., 1920x1080 ...` line of ffmpeg's
/// description of an input; `None` when it has no video stream.
fn parse_probe(text: &str) -> Option<Probe> {
    let duration = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Duration: "))
        .and_then(|rest| rest.split(',').next())
        .and_then(parse_clock);
    let stream = text
        .lines()
        .find(|l| l.trim_start().starts_with("Stream #") && l.contains(": Video: "))?;
    let (width, height) = stream
        .split(',')
        .filter_map(|part| part.split_whitespace().next())
        .find_map(parse_size)?;
    Some(Probe {
        width,
        height,
        duration,
    })
}

/// `1920x1080` (not a codec tag such as `0x31637661`).
fn parse_size(word: &str) -> Option<(u32, u32)> {
    let (w, h) = word.split_once('x')?;
    if w.starts_with('0') || h.starts_with('0') {
        return None;
    }
    let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

/// `HH:MM:SS.ss` in seconds (`N/A` gives `None`).
fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.trim().split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    let t =
        h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?;
    (t.is_finite() && t >= 0.0).then_some(t)
}

/// A binary PPM (`P6`, 8 bits) as ffmpeg writes it.
fn parse_ppm(bytes: &[u8]) -> Option<RgbImage> {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if start == at {
            return None;
        }
        fields.push(std::str::from_utf8(&bytes[start..at]).ok()?);
    }
    if fields[0] != "P6" || fields[3] != "255" {
        return None;
    }
    let (w, h): (u32, u32) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    let pixels = bytes.get(at + 1..)?;
    let len = (w as usize).checked_mul(h as usize)?.checked_mul(3)?;
    if w == 0 || h == 0 || pixels.len() < len {
        return None;
    }
    RgbImage::from_raw(w, h, pixels[..len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_moments_in_the_middle_of_their_stretches() {
        assert_eq!(moments(Some(4.0)), [2.0]);
        assert_eq!(moments(Some(10.0)), [5.0]);
        assert_eq!(
            moments(Some(25.0)),
            [25.0 / 6.0, 12.5, 125.0 / 6.0].map(|t| (t * 1000.0_f64).round() / 1000.0)
        );
        let long = moments(Some(3600.0));
        assert_eq!(long.len(), MAX_STILLS);
        assert_eq!(long[0], 225.0);
        assert_eq!(moments(None), [0.0]);
        assert_eq!(moments(Some(f64::NAN)), [0.0]);
    }

    #[test]
    fn ffmpeg_s_description_gives_size_and_duration() {
        let text = "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'IMG_1.MOV':\n  Metadata:\n    major_brand     : qt\n  Duration: 00:01:02.50, start: 0.000000, bitrate: 7931 kb/s\n  Stream #0:0[0x1](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv, bt709), 1920x1080, 7800 kb/s, 29.98 fps, 30 tbr, 600 tbn (default)\n    Side data:\n      displaymatrix: rotation of -90.00 degrees\n  Stream #0:1[0x2](und): Audio: aac\nAt least one output file must be specified\n";
        let p = parse_probe(text).unwrap();
        assert_eq!((p.width, p.height, p.duration), (1920, 1080, Some(62.5)));
        // A portrait still (rotated by ffmpeg) maps onto the turned frame.
        assert_eq!(p.frame_for(720, 1280), (1080, 1920));
        assert_eq!(p.frame_for(1280, 720), (1920, 1080));
        assert_eq!(
            parse_probe("Duration: N/A\nStream #0:0: Audio: mp3\n"),
            None
        );
        assert_eq!(parse_size("0x31637668"), None);
        assert_eq!(parse_clock("N/A"), None);
    }

    #[test]
    fn showinfo_says_when_the_key_frame_came() {
        let text = "Stream mapping:\n[Parsed_showinfo_0 @ 0x5] config in time_base: 1/15360, frame_rate: 30/1\n[Parsed_showinfo_0 @ 0x5] n:   0 pts:  15360 pts_time:1       pos:  1713549 fmt:yuv420p iskey:1 type:I\n";
        assert_eq!(shown_at(text), Some(1.0));
        // The exact time, where pts_time is rounded to 6 digits.
        let text = "[Parsed_showinfo_0 @ 0x5] config in time_base: 1/90000, frame_rate: 30000/1001\n[Parsed_showinfo_0 @ 0x5] n:   0 pts: 1801800 pts_time:20.02   pos: 1\n";
        assert_eq!(shown_at(text), Some(20.02));
        let text = "[Parsed_showinfo_0 @ 0x5] n:   0 pts: 7 pts_time:0.466667 pos: 1\n";
        assert_eq!(shown_at(text), Some(0.466667));
        assert_eq!(shown_at("no frame\n"), None);
    }

    #[test]
    fn ppm_is_read_and_bounded() {
        let mut ppm = b"P6\n2 1\n255\n".to_vec();
        ppm.extend([1, 2, 3, 4, 5, 6]);
        let img = parse_ppm(&ppm).unwrap();
        assert_eq!(img.dimensions(), (2, 1));
        assert_eq!(img.get_pixel(1, 0).0, [4, 5, 6]);
        assert!(parse_ppm(&ppm[..ppm.len() - 1]).is_none());
        assert!(parse_ppm(b"P5\n2 1\n255\nxx").is_none());
    }
}
