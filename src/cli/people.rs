//! The people commands: reading (`people`, `person`, `faces`, `clusters`, `stats`, `audit`) and
//! deciding (`name`, `rename`, `merge`, `split`, `reject`, `ignore`, `hide`, `unhide`, `reset`).
//! Every read command takes `--json` (one JSON value per line).

use clap::Args;
use serde::Serialize;

use super::StoreArgs;
use super::words::{plural, say_empty};
use crate::config::Settings;
use crate::people::{self, Ref, report};
use crate::store::{ClusterId, FaceId, Item, StoreError, clusters, faces};

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct PeopleArgs {
    /// Hidden people too
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct PersonArgs {
    pub name: String,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// `visage faces --help`: what the columns are, the score's scale above all.
pub const FACES_HELP: &str = "List faces, one per line: id, photo, box (x,y WxH in original \
pixels), score, cluster, person, and \"ambiguous\" for a face equally close to two people.

The score is the detection quality that --face-score (keep a face) and --face-cluster-score \
(cluster it automatically) are minimums of. For a face the PICO cascade found it is the \
cascade's summed score over the windows that found the face, with no upper bound (9 to a few \
hundred; a clear frontal face often scores over 100); for a face only MTCNN's proposals found \
it is 100 x O-Net's probability (80 to 100).";

#[derive(Debug, Args)]
pub struct FacesArgs {
    /// Only this person's faces
    #[arg(long, conflicts_with = "unassigned")]
    pub person: Option<String>,
    /// Only this cluster's faces (c12)
    #[arg(long, conflicts_with = "unassigned")]
    pub cluster: Option<ClusterId>,
    /// Only faces in no cluster and of no person (the review page's "Unknown")
    #[arg(long)]
    pub unassigned: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Repair what is found
    #[arg(long)]
    pub fix: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// A cluster (c12) or a face (f345)
    pub what: Ref,
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub old: String,
    pub new: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The person merged away
    pub from: String,
    /// The person who stays
    pub into: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Faces to move (f345 ...)
    #[arg(required = true)]
    pub faces: Vec<FaceId>,
    /// The person they move to (created if new)
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The face (f345)
    pub face: FaceId,
    /// The person it is not [default: the person it has now]
    #[arg(long)]
    pub person: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct IgnoreArgs {
    /// The cluster (c12)
    pub cluster: ClusterId,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct HideArgs {
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Every cluster, person and manual decision, not only automatic ones (needs --force)
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

fn print_json_lines<T: Serialize>(rows: &[T]) -> anyhow::Result<()> {
    for r in rows {
        println!("{}", serde_json::to_string(r)?);
    }
    Ok(())
}

pub fn people(args: PeopleArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let rows = store.read(|c| report::people(c, args.all))?;
    if args.read.json {
        print_json_lines(&rows)?;
    } else {
        for p in &rows {
            println!(
                "{}\t{} in {} ({} named by hand, {} matched){}",
                p.name,
                plural(p.faces, "face"),
                plural(p.photos, "photo"),
                p.manual,
                p.auto,
                if p.hidden { ", hidden" } else { "" }
            );
        }
    }
    if rows.is_empty() {
        let hidden = store.read(|c| report::people(c, true))?.len();
        if hidden > 0 {
            say_empty(
                args.read.json,
                &format!(
                    "everyone named is hidden ({}): `visage people --all` lists them",
                    plural(hidden, "person")
                ),
            );
        } else {
            say_empty(
                args.read.json,
                "nobody is named yet: see `visage clusters`, then `visage name c12 NAME` \
                 (or name them on the review page: `visage serve`)",
            );
        }
    }
    Ok(0)
}

pub fn person(args: PersonArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let Some(photos) = store.read(|c| report::person_photos(c, &args.name))? else {
        return Err(StoreError::NotFound(Item::Person(args.name)).into());
    };
    if args.read.json {
        print_json_lines(&photos)?;
    } else {
        for p in &photos {
            let ids: Vec<String> = p.faces.iter().map(|&f| FaceId(f).to_string()).collect();
            println!("{}\t{}", p.path, ids.join(" "));
        }
    }
    if photos.is_empty() {
        say_empty(
            args.read.json,
            &format!(
                "{:?} has no faces in photos still present (`visage name fN {:?}` names one)",
                args.name, args.name
            ),
        );
    }
    Ok(0)
}

pub fn faces(args: FacesArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let person = match &args.person {
        Some(name) => match store.read(|c| people::person_id(c, name))? {
            Some(p) => Some(p),
            None => return Err(StoreError::NotFound(Item::Person(name.clone())).into()),
        },
        None => None,
    };
    if let Some(c) = args.cluster
        && store.read(|conn| clusters::get(conn, c.0))?.is_none()
    {
        return Err(StoreError::NotFound(Item::Cluster(c)).into());
    }
    let filter = faces::Filter {
        person,
        cluster: args.cluster.map(|c| c.0),
        unassigned: args.unassigned,
    };
    let list = store.read(|c| faces::list(c, filter))?;
    for f in &list {
        if args.read.json {
            println!("{}", serde_json::to_string(f)?);
        } else {
            println!(
                "{}\t{}\t{:.0},{:.0} {:.0}x{:.0}\tscore {:.1}\t{}\t{}{}",
                FaceId(f.id),
                f.path,
                f.x,
                f.y,
                f.w,
                f.h,
                f.score,
                f.cluster.map_or("-".into(), |c| ClusterId(c).to_string()),
                f.person.as_deref().unwrap_or("-"),
                if f.ambiguous { "\tambiguous" } else { "" }
            );
        }
    }
    if list.is_empty() {
        let note = match (&args.person, args.cluster) {
            (Some(name), _) => format!("{name:?} has no faces in photos still present"),
            (None, Some(c)) => format!("{c} has no faces in photos still present"),
            _ if args.unassigned => {
                "no unassigned faces: every face is in a cluster or named".to_string()
            }
            _ => "no faces yet: `visage index DIR` finds them".to_string(),
        };
        say_empty(args.read.json, &note);
    }
    Ok(0)
}

#[derive(Serialize)]
struct ClusterLine {
    #[serde(flatten)]
    row: clusters::ClusterRow,
    faces: usize,
    example: Option<String>,
}

pub fn clusters(args: ReadArgs) -> anyhow::Result<i32> {
    let store = args.store.open()?;
    let members = store.read(clusters::members)?;
    let rows = store.read(clusters::all)?;
    if rows.is_empty() {
        say_empty(
            args.json,
            "no clusters yet: `visage cluster` groups similar faces (`visage index DIR` finds \
             them first)",
        );
    }
    for row in rows {
        let (faces, example) = members.get(&row.id).cloned().unzip();
        let line = ClusterLine {
            faces: faces.unwrap_or(0) as usize,
            example,
            row,
        };
        if args.json {
            println!("{}", serde_json::to_string(&line)?);
        } else {
            println!(
                "{}\t{}\t{}\t{}, radius {:.2}\te.g. {}",
                ClusterId(line.row.id),
                line.row.kind.as_str(),
                line.row.person.as_deref().unwrap_or("-"),
                plural(line.faces, "face"),
                line.row.radius,
                line.example.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(0)
}

pub fn stats(args: ReadArgs) -> anyhow::Result<i32> {
    let store = args.store.open()?;
    let s = store.read(report::stats)?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "photos {} ({} failed, {} gone)\nfaces {}: {} clustered, {} named by hand, \
             {} matched automatically, {} ambiguous, {} unassigned\n\
             clusters: {} automatic, {} named, {} ignored; people {}; rejections {}",
            s.photos,
            s.photos_failed,
            s.photos_gone,
            s.faces,
            s.faces_clustered,
            s.faces_manual,
            s.faces_auto,
            s.faces_ambiguous,
            s.faces_unassigned,
            s.clusters_auto,
            s.clusters_manual,
            s.clusters_ignored,
            s.people,
            s.rejections
        );
        for (what, q) in [
            ("face to its cluster's centroid", &s.member_distance),
            ("cluster sample radius", &s.cluster_radius),
        ] {
            println!(
                "{what}: mean {:.3}, median {:.3}, p95 {:.3}, max {:.3} (n={})",
                q.mean, q.median, q.p95, q.max, q.count
            );
        }
    }
    Ok(0)
}

pub fn audit(args: AuditArgs) -> anyhow::Result<i32> {
    let mut store = args.read.store.open()?;
    let findings = report::audit(&mut store, args.fix)?;
    let integrity = store.integrity_check()?;
    let problems = findings.iter().filter(|f| f.count > 0 && !f.fixed).count();
    if args.read.json {
        print_json_lines(&findings)?;
        println!("{}", serde_json::json!({ "integrity_check": integrity }));
    } else {
        for f in findings.iter().filter(|f| f.count > 0) {
            println!(
                "{}: {}{}",
                f.problem,
                f.count,
                if f.fixed { " (fixed)" } else { "" }
            );
        }
        if problems == 0 {
            println!("no inconsistencies left");
        } else {
            println!("run `visage audit --fix` to repair");
        }
        println!("PRAGMA integrity_check: {integrity}");
    }
    Ok(if problems > 0 || integrity != "ok" {
        1
    } else {
        0
    })
}

pub fn name(args: NameArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let n = people::name(&mut store, args.what, &args.name, &args.settings)?;
    println!("named {} {:?}", plural(n, "face"), args.name.trim());
    Ok(0)
}

pub fn rename(args: RenameArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    people::rename(&mut store, &args.old, &args.new)?;
    println!("renamed {:?} to {:?}", args.old, args.new);
    Ok(0)
}

pub fn merge(args: MergeArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let n = people::merge(&mut store, &args.from, &args.into)?;
    println!(
        "merged {:?} into {:?} ({} moved)",
        args.from,
        args.into,
        plural(n, "face")
    );
    Ok(0)
}

pub fn split(args: SplitArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let ids: Vec<i64> = args.faces.iter().map(|f| f.0).collect();
    let n = people::split(&mut store, &ids, &args.to, &args.settings)?;
    println!("moved {} to {:?}", plural(n, "face"), args.to);
    Ok(0)
}

pub fn reject(args: RejectArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let who = people::reject(&mut store, args.face.0, args.person.as_deref())?;
    println!(
        "{} is not {who:?}; it will not be matched to them again",
        args.face
    );
    Ok(0)
}

pub fn ignore(args: IgnoreArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let n = people::ignore(&mut store, args.cluster.0)?;
    println!("ignoring {} ({})", args.cluster, plural(n, "face"));
    Ok(0)
}

pub fn hide(args: HideArgs, hidden: bool) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    people::hide(&mut store, &args.name, hidden)?;
    if hidden {
        println!(
            "{:?} is hidden from `visage people` (`visage unhide` shows them again)",
            args.name
        );
    } else {
        println!("{:?} is shown in `visage people` again", args.name);
    }
    Ok(0)
}

pub fn reset(args: ResetArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let r = people::reset(&mut store, args.all, args.force)?;
    println!(
        "reset: {} and {} removed, {} cleared (`visage cluster` clusters and matches again)",
        plural(r.clusters, "cluster"),
        plural(r.people, "person"),
        plural(r.faces_cleared, "face")
    );
    Ok(0)
}
