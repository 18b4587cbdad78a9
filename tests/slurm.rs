//! Many machines, on a real Slurm cluster (controller, node daemon and munge started on this
//! machine by `common::slurm`): `scripts/slurm/index.sbatch` as a job array of 3 indexes a real
//! photo folder in 3 shards, `scripts/slurm/merge.sbatch` (afterok) merges them and clusters once,
//! and the library equals one `visage index` of the same folder: the same photos, the same faces
//! (boxes equal, embeddings within 1e-5), the same clusters. Then one array task is killed with
//! SIGKILL mid-run and requeued: it resumes its shard, and after the merge no photo or face is
//! missing or duplicated and SQLite finds the library sound.
//!
//!
//! A re-cluster with its neighbour graph shared out: `scripts/slurm/graph.sbatch` as a job array
//! of 3 computes the graph's parts, `scripts/slurm/cluster.sbatch` (afterok) clusters from them,
//! and the library equals one `visage cluster --recluster`'s. A part lost and its task requeued
//! redoes that part alone.
//!
//! Without Slurm installed the test fails, naming the packages to install.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::slurm::Cluster;
use crate::common::{self, copy_tree, models, run, tempdir};
use visage::index::Shard;
use visage::store::{ClusterId, Store};
use visage::store::{embeddings, faces, photos};

const SHARDS: u32 = 3;
/// The whole array, merge included, on a shared 2-core machine.
const LIMIT: Duration = Duration::from_secs(40 * 60);

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/slurm")
        .join(name)
        .display()
        .to_string()
}

/// A face as the comparison names it: its photo's path and its box (bits of the four floats).
type FaceKey = (String, [u32; 4]);

struct Library {
    photos: BTreeSet<String>,
    /// Each face's embedding, by key.
    faces: BTreeMap<FaceKey, Vec<f32>>,
    /// The clusters as sets of faces (each face in one cluster at most).
    clusters: BTreeSet<BTreeSet<FaceKey>>,
}

/// Read a library, failing on a duplicated photo or face, a failed photo or an unsound file.
fn library(db: &Path) -> Library {
    let store = Store::open(db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok", "{}", db.display());
    let states = store.read(photos::states).unwrap();
    for (path, s) in &states {
        assert!(!s.failed && !s.gone, "{path}: {s:?}");
    }
    let rows = store
        .read(|c| faces::list(c, faces::Filter::default()))
        .unwrap();
    let mut faces = BTreeMap::new();
    let mut clusters: BTreeMap<ClusterId, BTreeSet<FaceKey>> = BTreeMap::new();
    for f in rows {
        let key = (f.path.clone(), [f.x, f.y, f.w, f.h].map(f32::to_bits));
        if let Some(c) = f.cluster {
            clusters.entry(c).or_default().insert(key.clone());
        }
        let embedding = store.read(|c| embeddings::get(c, f.id.0)).unwrap().unwrap();
        let twice = faces.insert(key.clone(), embedding);
        assert!(twice.is_none(), "face stored twice: {key:?}");
    }
    Library {
        photos: states.into_keys().collect(),
        faces,
        clusters: clusters.into_values().collect(),
    }
}

/// The merged library holds what one `visage index` holds.
fn assert_same(single: &Library, merged: &Library, clusters: bool) {
    assert_eq!(single.photos, merged.photos, "photos");
    let keys = |l: &Library| l.faces.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(single), keys(merged), "faces (photo path + box)");
    let mut worst = 0f32;
    for (key, a) in &single.faces {
        let b = &merged.faces[key];
        assert_eq!(a.len(), b.len(), "{key:?}");
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs());
        }
    }
    assert!(worst <= 1e-5, "embeddings differ by up to {worst}");
    if clusters {
        assert!(!single.clusters.is_empty());
        assert_eq!(single.clusters, merged.clusters, "clusters");
    }
}

/// Each shard database holds exactly the photos its shard takes, and together they hold all.
fn assert_shards(shards: &[PathBuf], root: &Path, all: &BTreeSet<String>) {
    let root = std::fs::canonicalize(root).unwrap();
    let prefix = format!("{}/", root.display());
    let mut union = BTreeSet::new();
    for (i, db) in shards.iter().enumerate() {
        let shard = Shard::new(i as u64, shards.len() as u64).unwrap();
        let store = Store::open(db).unwrap();
        let paths: Vec<String> = store.read(photos::states).unwrap().into_keys().collect();
        assert!(!paths.is_empty(), "{} is empty", db.display());
        for p in paths {
            let rel = p.strip_prefix(&prefix).unwrap();
            assert!(shard.takes(Path::new(rel)), "{p} in shard {shard}");
            assert!(union.insert(p.clone()), "{p} in two shards");
        }
    }
    assert_eq!(&union, all);
}

/// The visage process of one array task: the one whose environment names the job and task.
fn task_process(job: &str, task: u32) -> Option<i32> {
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_visage")).unwrap();
    let wanted = [
        format!("SLURM_ARRAY_JOB_ID={job}"),
        format!("SLURM_ARRAY_TASK_ID={task}"),
    ];
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        if std::fs::read_link(e.path().join("exe")).ok()? != exe {
            return None;
        }
        let environ = std::fs::read(e.path().join("environ")).ok()?;
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        wanted
            .iter()
            .all(|w| vars.contains(&w.as_bytes()))
            .then_some(pid)
    })
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn photo_count(db: &Path) -> usize {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(db, flags)
        .and_then(|c| c.query_row("SELECT count(*) FROM photos", [], |r| r.get::<_, i64>(0)))
        .map_or(0, |n| n as usize)
}

#[test]
fn an_array_of_shards_merged_equals_one_index_and_survives_a_killed_task() {
    let dir = tempdir("slurm");
    let cluster = Cluster::start(&dir.join("cluster"));
    models();
    // The celebrity set and the group photos (larger, several faces each).
    let photos = dir.join("photos");
    copy_tree(
        &common::testdata().join("celebrity"),
        &photos.join("celebrity"),
    );
    copy_tree(&common::testdata().join("group"), &photos.join("group"));
    let photos_arg = photos.display().to_string();
    let jobs = cluster.dir.join("jobs");
    let visage = env!("CARGO_BIN_EXE_visage");

    // One machine, one `visage index`: the reference.
    let single_db = dir.join("single.db");
    run(&single_db, &["index", &photos_arg], 0);
    let single = library(&single_db);
    assert!(single.photos.len() >= 120 && single.faces.len() >= 120);

    // Three shards as a Slurm job array (index.sbatch), then the merge and clustering as a
    // dependent job (merge.sbatch). Each round has its own shards, library and job outputs.
    let out = |name: &str| format!("--output={}/{name}", jobs.display());
    let submit = |round: &str| {
        let shards = dir.join(round).join("shards");
        let library = dir.join(round).join("library.db");
        let env = vec![
            ("VISAGE", visage.to_string()),
            ("VISAGE_PHOTOS", photos_arg.clone()),
            ("VISAGE_SHARDS_DIR", shards.display().to_string()),
            ("VISAGE_LIBRARY", library.display().to_string()),
            ("VISAGE_DEVICE", "cpu".to_string()),
            ("XDG_RUNTIME_DIR", "/tmp".to_string()),
            ("RUST_LOG", "warn".to_string()),
        ];
        let array = cluster.sbatch(
            &[
                &format!("--array=0-{}", SHARDS - 1),
                "--cpus-per-task=1",
                &out(&format!("{round}-index-%A_%a.out")),
                &script("index.sbatch"),
            ],
            &borrowed(&env),
        );
        (array, shards, library, env)
    };
    let (array, shards, library_db, env) = submit("first");
    let merge = cluster.sbatch(
        &[
            &format!("--dependency=afterok:{array}"),
            &out("first-merge-%j.out"),
            &script("merge.sbatch"),
        ],
        &borrowed(&env),
    );
    let state = cluster.wait(&merge, LIMIT);
    assert_eq!(state, "COMPLETED", "merge job:\n{}", cluster.logs());
    for task in 0..SHARDS {
        assert_eq!(cluster.state(&format!("{array}_{task}")), "COMPLETED");
    }
    let shard_dbs: Vec<PathBuf> = (0..SHARDS)
        .map(|i| shards.join(format!("shard-{i}.db")))
        .collect();
    assert_shards(&shard_dbs, &photos, &single.photos);
    assert_same(&single, &library(&library_db), true);

    // Merging the same shards again changes nothing (and writes no face).
    let again = run(
        &library_db,
        &[
            &["merge", "--json"][..],
            &shard_dbs
                .iter()
                .map(|p| p.to_str().unwrap())
                .collect::<Vec<_>>(),
        ]
        .concat(),
        0,
    );
    for line in common::lines(&again) {
        assert_eq!(line["faces"], 0, "{line}");
        assert_eq!(line["unchanged"], line["photos"], "{line}");
    }
    assert_same(&single, &library(&library_db), true);

    // The fault: the task of the largest shard (more than one batch of photos) is killed with
    // SIGKILL once it has stored a batch, then requeued.
    let root = std::fs::canonicalize(&photos).unwrap();
    let mut sizes = vec![0usize; SHARDS as usize];
    for p in &single.photos {
        let rel = Path::new(p).strip_prefix(&root).unwrap();
        sizes[Shard::of(rel, SHARDS) as usize] += 1;
    }
    let victim = (0..SHARDS).max_by_key(|&i| sizes[i as usize]).unwrap();
    assert!(sizes[victim as usize] > visage::index::BATCH, "{sizes:?}");
    let (array, shards, library_db, env) = submit("fault");
    let task = format!("{array}_{victim}");
    let victim_db = shards.join(format!("shard-{victim}.db"));
    let started = Instant::now();
    // The task's process is found as soon as it runs, then its shard polled every 5 ms: the
    // time between its first stored batch and its end is short (under a second here), and
    // Slurm's own state takes a command to read, so it is read only every 100 ms.
    let mut process = None;
    let mut polls = 0u32;
    let pid = loop {
        if process.is_none() {
            process = task_process(&array, victim);
        }
        if let Some(pid) = process
            && photo_count(&victim_db) > 0
        {
            break pid;
        }
        if polls.is_multiple_of(20) {
            let state = cluster.state(&task);
            assert!(
                state == "PENDING" || state == "RUNNING",
                "task {task} ended ({state}) before it could be killed:\n{}",
                cluster.logs()
            );
        }
        assert!(
            started.elapsed() < LIMIT,
            "task {task} never stored a batch"
        );
        polls += 1;
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: kill(2) on a pid just read from /proc; at worst it no longer exists.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let state = cluster.wait(&task, LIMIT);
    assert_eq!(state, "FAILED", "task {task} after SIGKILL");
    let stored_before = photo_count(&victim_db);
    cluster.scontrol(&["requeue", &task]);
    // A failed task leaves `afterok` on the array unsatisfiable for good: the merge waits on the
    // three tasks by name (README, "Many machines": what to do when a task fails).
    let merge = cluster.sbatch(
        &[
            &format!(
                "--dependency=afterok:{}",
                (0..SHARDS)
                    .map(|i| format!("{array}_{i}"))
                    .collect::<Vec<_>>()
                    .join(":")
            ),
            &out("fault-merge-%j.out"),
            &script("merge.sbatch"),
        ],
        &borrowed(&env),
    );
    let state = cluster.wait(&merge, LIMIT);
    assert_eq!(state, "COMPLETED", "merge job:\n{}", cluster.logs());
    // The requeued task resumed: the photos it had stored were found unchanged.
    let log = std::fs::read_to_string(jobs.join(format!("fault-index-{task}.out"))).unwrap();
    assert!(
        log.contains(&format!("{stored_before} unchanged")),
        "task {task} did not resume its {stored_before} photos:\n{log}"
    );
    let shard_dbs: Vec<PathBuf> = (0..SHARDS)
        .map(|i| shards.join(format!("shard-{i}.db")))
        .collect();
    assert_shards(&shard_dbs, &photos, &single.photos);
    assert_same(&single, &library(&library_db), true);
    drop(cluster);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merge_and_shards_refuse_mistakes_before_writing() {
    let dir = tempdir("shard-mistakes");
    let db = dir.join("library.db");
    let db_arg = db.to_str().unwrap();
    let err = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    // The person merge of old: a clear pointer to merge-person, and no library created.
    let out = common::visage(&["merge", "Robert", "Bob", "--db", db_arg], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("visage merge-person FROM INTO"),
        "{}",
        err(&out)
    );
    assert!(err(&out).contains("Robert: no such file"), "{}", err(&out));
    assert!(!db.exists());

    // A shard that is not there, or not a database: named, and nothing written.
    let text = dir.join("notes.db");
    std::fs::write(&text, "not a database, but long enough to have a header").unwrap();
    let missing = dir.join("shard-7.db");
    let out = common::visage(
        &[
            "merge",
            text.to_str().unwrap(),
            missing.to_str().unwrap(),
            "--db",
            db_arg,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("notes.db: not an SQLite database"),
        "{}",
        err(&out)
    );
    assert!(
        err(&out).contains("shard-7.db: no such file"),
        "{}",
        err(&out)
    );
    assert!(!db.exists());

    // --shards without a scheduler's task index, or with one out of range.
    let photos = common::testdata().join("group");
    let photos = photos.to_str().unwrap();
    let out = common::visage(&["index", "--shards", "3", "--db", db_arg, photos], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("SLURM_ARRAY_TASK_ID"), "{}", err(&out));
    let out = common::visage(
        &["index", "--shards", "3", "--db", db_arg, photos],
        &[("JOB_COMPLETION_INDEX", "3")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("JOB_COMPLETION_INDEX=3"),
        "{}",
        err(&out)
    );
    let out = common::visage(&["index", "--shard", "1/0", "--db", db_arg, photos], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("1/0"), "{}", err(&out));
    assert!(!db.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_graph_array_then_cluster_equals_one_recluster_and_a_requeued_part_redoes_itself() {
    use crate::recluster::{SETTINGS, clusters, copy, faces, with};
    let dir = tempdir("slurm-graph");
    let cluster = Cluster::start(&dir.join("cluster"));
    models();
    let photos = dir.join("photos");
    copy_tree(
        &common::testdata().join("celebrity"),
        &photos.join("celebrity"),
    );
    let db = dir.join("library.db");
    run(&db, &with(&["index", photos.to_str().unwrap()]), 0);
    let one = dir.join("one.db");
    copy(&db, &one);
    run(&one, &with(&["cluster", "--recluster"]), 0);

    let graphs = dir.join("graph");
    let jobs = cluster.dir.join("jobs");
    let out = |name: &str| format!("--output={}/{name}", jobs.display());
    // The cluster settings travel as the variables both steps read: `recluster::SETTINGS`.
    let env = vec![
        ("VISAGE", env!("CARGO_BIN_EXE_visage").to_string()),
        ("VISAGE_LIBRARY", db.display().to_string()),
        ("VISAGE_GRAPHS_DIR", graphs.display().to_string()),
        ("VISAGE_DEVICE", "cpu".to_string()),
        ("VISAGE_FACE_CLUSTER_DIST", "0.9".to_string()),
        ("VISAGE_FACE_CLUSTER_CORE", "3".to_string()),
        ("VISAGE_GRAPH", "exact".to_string()),
        ("XDG_RUNTIME_DIR", "/tmp".to_string()),
        ("RUST_LOG", "warn".to_string()),
    ];
    assert_eq!(
        SETTINGS,
        [
            "--face-cluster-dist",
            "0.9",
            "--face-cluster-core",
            "3",
            "--graph",
            "exact"
        ]
    );
    let array = cluster.sbatch(
        &[
            "--array=0-2",
            "--cpus-per-task=1",
            &out("graph-%A_%a.out"),
            &script("graph.sbatch"),
        ],
        &borrowed(&env),
    );
    let step = cluster.sbatch(
        &[
            &format!("--dependency=afterok:{array}"),
            &out("cluster-%j.out"),
            &script("cluster.sbatch"),
        ],
        &borrowed(&env),
    );
    assert_eq!(
        cluster.wait(&step, LIMIT),
        "COMPLETED",
        "{}",
        cluster.logs()
    );
    assert_eq!(faces(&db), faces(&one));
    assert_eq!(clusters(&db), clusters(&one));

    // Part 1 lost; its task requeued: it computes part 1 again and nothing else.
    let part = |i: u32| graphs.join(format!("part-000{i}-of-0003.edges"));
    let stamp = |i: u32| std::fs::metadata(part(i)).unwrap().modified().unwrap();
    let (zero, two) = (stamp(0), stamp(2));
    std::fs::remove_file(part(1)).unwrap();
    let task = format!("{array}_1");
    cluster.scontrol(&["requeue", &task]);
    let started = Instant::now();
    while !part(1).is_file() {
        assert!(
            started.elapsed() < LIMIT,
            "part 1 never came back:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        cluster.wait(&task, LIMIT),
        "COMPLETED",
        "{}",
        cluster.logs()
    );
    assert_eq!((stamp(0), stamp(2)), (zero, two));
    // A task run again over a part that is there (the library unchanged) does nothing.
    let again = cluster.sbatch(
        &[
            "--array=2",
            "--cpus-per-task=1",
            &out("again-%A_%a.out"),
            &script("graph.sbatch"),
        ],
        &borrowed(
            &env.iter()
                .cloned()
                .chain([("VISAGE_PARTS", "3".to_string())])
                .collect::<Vec<_>>(),
        ),
    );
    assert_eq!(
        cluster.wait(&format!("{again}_2"), LIMIT),
        "COMPLETED",
        "{}",
        cluster.logs()
    );
    let log = std::fs::read_to_string(jobs.join(format!("again-{again}_2.out"))).unwrap();
    assert!(log.contains("already computed"), "{log}");
    assert_eq!(stamp(2), two);
    // The clusters from the parts once more: the same as a second re-cluster (new cluster ids).
    run(&one, &with(&["cluster", "--recluster"]), 0);
    let step = cluster.sbatch(
        &[&out("cluster-again-%j.out"), &script("cluster.sbatch")],
        &borrowed(&env),
    );
    assert_eq!(
        cluster.wait(&step, LIMIT),
        "COMPLETED",
        "{}",
        cluster.logs()
    );
    assert_eq!(faces(&db), faces(&one));
    assert_eq!(clusters(&db), clusters(&one));
    drop(cluster);
    std::fs::remove_dir_all(&dir).unwrap();
}
