//! The people commands: reading (`people`, `person`, `faces`, `clusters`, `stats`, `audit`) and
//! deciding (`name`, `rename`, `merge-person`, `split`, `reject`, `ignore`, `hide`, `unhide`,
//! `reset`).
//! Every read command takes `--json` (one JSON value per line).

use anyhow::bail;
use clap::Args;
use serde::Serialize;

use super::StoreArgs;
use crate::config::Settings;
use crate::people::{self, Ref, report};
use crate::store::{clusters, faces};

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

#[derive(Debug, Args)]
pub struct FacesArgs {
    /// Only this person's faces
    #[arg(long)]
    pub person: Option<String>,
    /// Only this cluster's faces (c12)
    #[arg(long, value_parser = cluster_id)]
    pub cluster: Option<i64>,
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
pub struct MergePersonArgs {
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
    #[arg(required = true, value_parser = face_id)]
    pub faces: Vec<i64>,
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
    #[arg(value_parser = face_id)]
    pub face: i64,
    /// The person it is not [default: the person it has now]
    #[arg(long)]
    pub person: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct IgnoreArgs {
    /// The cluster (c12)
    #[arg(value_parser = cluster_id)]
    pub cluster: i64,
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

/// `f345` or `345`.
fn face_id(s: &str) -> Result<i64, String> {
    match s.parse::<Ref>() {
        Ok(Ref::Face(id)) => Ok(id),
        Ok(Ref::Cluster(_)) => Err(format!("{s:?} is a cluster; expected a face like f345")),
        Err(e) => s.parse().map_err(|_| e),
    }
}

/// `c12` or `12`.
fn cluster_id(s: &str) -> Result<i64, String> {
    match s.parse::<Ref>() {
        Ok(Ref::Cluster(id)) => Ok(id),
        Ok(Ref::Face(_)) => Err(format!("{s:?} is a face; expected a cluster like c12")),
        Err(e) => s.parse().map_err(|_| e),
    }
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
                "{}\t{} faces in {} photos ({} named by hand, {} matched){}",
                p.name,
                p.faces,
                p.photos,
                p.manual,
                p.auto,
                if p.hidden { ", hidden" } else { "" }
            );
        }
    }
    Ok(0)
}

pub fn person(args: PersonArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let Some(photos) = store.read(|c| report::person_photos(c, &args.name))? else {
        bail!("no person named {:?} (see `visage people`)", args.name);
    };
    if args.read.json {
        print_json_lines(&photos)?;
    } else {
        for p in &photos {
            let ids: Vec<String> = p.faces.iter().map(|f| format!("f{f}")).collect();
            println!("{}\t{}", p.path, ids.join(" "));
        }
    }
    Ok(0)
}

pub fn faces(args: FacesArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let person = match &args.person {
        Some(name) => match store.read(|c| people::person_id(c, name))? {
            Some(p) => Some(p),
            None => bail!("no person named {name:?} (see `visage people`)"),
        },
        None => None,
    };
    let filter = faces::Filter {
        person,
        cluster: args.cluster,
        embeddings: false,
    };
    for f in store.read(|c| faces::list(c, filter))? {
        if args.read.json {
            println!("{}", serde_json::to_string(&f)?);
        } else {
            println!(
                "f{}\t{}\t{:.0},{:.0} {:.0}x{:.0}\tscore {:.1}\t{}\t{}{}",
                f.id,
                f.path,
                f.x,
                f.y,
                f.w,
                f.h,
                f.score,
                f.cluster.map_or("-".into(), |c| format!("c{c}")),
                f.person.as_deref().unwrap_or("-"),
                if f.ambiguous { "\tambiguous" } else { "" }
            );
        }
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
    for row in store.read(clusters::all)? {
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
                "c{}\t{}\t{}\t{} faces, radius {:.2}\te.g. {}",
                line.row.id,
                line.row.kind.as_str(),
                line.row.person.as_deref().unwrap_or("-"),
                line.faces,
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
    println!("named {n} faces {:?}", args.name.trim());
    Ok(0)
}

pub fn rename(args: RenameArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    people::rename(&mut store, &args.old, &args.new)?;
    println!("renamed {:?} to {:?}", args.old, args.new);
    Ok(0)
}

pub fn merge_person(args: MergePersonArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let n = people::merge(&mut store, &args.from, &args.into)?;
    println!(
        "merged {:?} into {:?} ({n} faces moved)",
        args.from, args.into
    );
    Ok(0)
}

pub fn split(args: SplitArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let n = people::split(&mut store, &args.faces, &args.to, &args.settings)?;
    println!("moved {n} faces to {:?}", args.to);
    Ok(0)
}

pub fn reject(args: RejectArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let who = people::reject(&mut store, args.face, args.person.as_deref())?;
    println!(
        "f{} is not {who:?}; it will not be matched to them again",
        args.face
    );
    Ok(0)
}

pub fn ignore(args: IgnoreArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let n = people::ignore(&mut store, args.cluster)?;
    println!("ignoring c{} ({n} faces)", args.cluster);
    Ok(0)
}

pub fn hide(args: HideArgs, hidden: bool) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    people::hide(&mut store, &args.name, hidden)?;
    Ok(0)
}

pub fn reset(args: ResetArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let r = people::reset(&mut store, args.all, args.force)?;
    println!(
        "reset: {} clusters and {} people removed, {} faces cleared",
        r.clusters, r.people, r.faces_cleared
    );
    Ok(0)
}
