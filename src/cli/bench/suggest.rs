//! `visage bench suggest`: how long suggestions for one person take over a synthetic library of
//! unnamed faces (one JSON line).

use anyhow::Context;

use super::TempDb;
use crate::config::Settings;
use crate::people::{self, Ref, suggest};
use crate::store::{FaceId, Store, faces};

/// A synthetic library (deterministic 512-d embeddings in groups of 20
/// about 0.7 apart, stored through `store::photos` as 100 faces a photo), one person named by hand
/// on `named` faces of the first group, then suggestions for that person over all the unnamed
/// faces, timed (three runs; the database is in the page cache after the first).
pub fn run(n: usize, named: usize) -> anyhow::Result<i32> {
    use crate::detection::{Detection, FoundFace, Source};
    use crate::geometry::Rect;
    use crate::store::photos::{self, FileInfo, PhotoInfo};
    let named = named.clamp(1, 19);
    let rows = crate::graph::synthetic::embeddings(512, n / 20 + 1, 20, 0.55, 0);
    let total = rows.len() / 512;
    let temp = TempDb::new("suggest");
    let mut store = Store::open_or_create(&temp.0)?;
    let started = std::time::Instant::now();
    store.write(|tx| -> anyhow::Result<()> {
        for (k, chunk) in rows.chunks(512 * 100).enumerate() {
            let found: Vec<FoundFace> = chunk
                .chunks(512)
                .enumerate()
                .map(|(i, e)| FoundFace {
                    detection: Detection {
                        rect: Rect {
                            x: (i % 10) as f32 * 100.0,
                            y: (i / 10) as f32 * 100.0,
                            w: 90.0,
                            h: 90.0,
                        },
                        size: 90,
                        score: 20.0,
                        source: Source::Pico,
                        probability: 1.0,
                        landmarks: Vec::new(),
                    },
                    embedding: e.to_vec(),
                })
                .collect();
            let file = FileInfo {
                path: format!("/synthetic/{k:05}.jpg"),
                size: 1,
                mtime_ns: 0,
                hash: None,
            };
            let info = PhotoInfo {
                width: 1000,
                height: 1000,
                orientation: 1,
            };
            photos::store_indexed(tx, &file, info, &found, crate::store::now())?;
        }
        Ok(())
    })?;
    let stored = started.elapsed().as_secs_f64();
    let first: Vec<FaceId> = store.read(|c| faces::first(c, named))?;
    let targets: Vec<Ref> = first.iter().map(|&f| Ref::Face(f)).collect();
    let settings = Settings::default();
    people::name_several(&mut store, &targets, "Synthetic", &[], &settings, None)?;
    let p = store
        .read(|c| people::person_id(c, "Synthetic"))?
        .context("the synthetic person")?;
    let mut times = Vec::new();
    let mut suggested = 0;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let groups = store.read(|c| suggest::groups(c, Some(p), &settings, suggest::GROUP))?;
        times.push(t.elapsed().as_secs_f64());
        suggested = groups.iter().map(|g| g.faces.len()).sum::<usize>();
    }
    println!(
        "{}",
        serde_json::json!({
            "unnamed_faces": total - named,
            "named": named,
            "suggested": suggested,
            "seconds": times,
            "library_written_s": stored,
            "threads": rayon::current_num_threads(),
        })
    );
    Ok(0)
}
