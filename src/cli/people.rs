//! The people commands: reading (`people`, `person`, `faces`, `clusters`, `stats`, `audit`,
//! `suggestions`, `history`) and deciding (`name`, `rename`, `merge`, `split`, `reject`, `ignore`,
//! `unignore`, `hide`, `unhide`, `mark`, `undo`, `reset`). Every read command takes `--json` (one
//! JSON value per line). Decisions that name faces run matching afterwards, as the review page
//! does, in the same recorded action.

use anyhow::bail;
use clap::Args;
use serde::Serialize;

use super::StoreArgs;
use crate::config::Settings;
use crate::graph::GraphBackend;
use crate::people::{self, Outcome, Ref, Rematch, history, report, suggest};
use crate::store::{Store, clusters, faces};

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
    /// Clusters (c12) and faces (f345), named in one action
    #[arg(required = true, value_name = "CLUSTER|FACE")]
    pub what: Vec<Ref>,
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
pub struct SuggestionsArgs {
    /// Only this person's group
    #[arg(long)]
    pub person: Option<String>,
    /// Faces per group at most
    #[arg(long, default_value_t = suggest::GROUP)]
    pub limit: usize,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Actions shown at most, newest first
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// How many of the last actions to take back
    #[arg(default_value_t = 1, conflicts_with = "action")]
    pub count: usize,
    /// Take back this one action (its number in `visage history`), if no later action depends
    /// on it
    #[arg(long, value_name = "ID")]
    pub action: Option<i64>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// Faces (f345 ...)
    #[arg(required = true, value_parser = face_id)]
    pub faces: Vec<i64>,
    /// What they are
    #[arg(long = "as", value_enum)]
    pub verdict: MarkChoice,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What `visage mark` says a face is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MarkChoice {
    /// A false detection: never clustered, matched or listed again
    NotAFace,
    /// A real face nobody needs to name
    Stranger,
    /// Take the mark away: the face is to review again
    Face,
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
        Some(name) => Some(person_or_fail(&store, name)?),
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

/// "; matching found N more faces" when it did.
fn joined(o: &Outcome) -> String {
    if o.joined > 0 {
        format!("; matching found {} more", o.joined)
    } else {
        String::new()
    }
}

/// Run `f` with matching after it, on the device the settings choose.
fn with_rematch<T>(
    settings: &Settings,
    f: impl FnOnce(Rematch) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let backend = GraphBackend::choose(settings.device)?;
    f(Rematch {
        settings,
        backend: &backend,
    })
}

pub fn name(args: NameArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let o = with_rematch(&args.settings, |r| {
        Ok(people::name_several(
            &mut store,
            &args.what,
            &args.name,
            &[],
            &args.settings,
            Some(r),
        )?)
    })?;
    println!(
        "named {} faces {:?}{}",
        o.faces,
        args.name.trim(),
        joined(&o)
    );
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
    let o = people::merge(&mut store, &args.from, &args.into)?;
    println!(
        "merged {:?} into {:?} ({} faces moved)",
        args.from, args.into, o.faces
    );
    Ok(0)
}

pub fn split(args: SplitArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let o = with_rematch(&args.settings, |r| {
        Ok(people::split(
            &mut store,
            &args.faces,
            &args.to,
            &args.settings,
            Some(r),
        )?)
    })?;
    println!("moved {} faces to {:?}{}", o.faces, args.to, joined(&o));
    Ok(0)
}

pub fn reject(args: RejectArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let (_, who) = people::reject(&mut store, &[args.face], args.person.as_deref())?;
    println!(
        "f{} is not {:?}; it will not be matched to them again",
        args.face,
        who.first().cloned().unwrap_or_default()
    );
    Ok(0)
}

pub fn ignore(args: IgnoreArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let o = people::ignore(&mut store, args.cluster)?;
    println!("ignoring c{} ({} faces)", args.cluster, o.faces);
    Ok(0)
}

pub fn unignore(args: IgnoreArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let o = people::unignore(&mut store, args.cluster)?;
    println!("c{} is back for review ({} faces)", args.cluster, o.faces);
    Ok(0)
}

pub fn hide(args: HideArgs, hidden: bool) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    people::hide(&mut store, &args.name, hidden)?;
    Ok(0)
}

pub fn mark(args: MarkArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let verdict = match args.verdict {
        MarkChoice::NotAFace => Some(people::Verdict::NotAFace),
        MarkChoice::Stranger => Some(people::Verdict::Stranger),
        MarkChoice::Face => None,
    };
    let o = people::set_verdict(&mut store, &args.faces, verdict)?;
    println!(
        "marked {} faces {}",
        o.faces,
        verdict.map_or("to review again", |v| match v {
            people::Verdict::NotAFace => "not a face",
            people::Verdict::Stranger => "strangers",
        })
    );
    Ok(0)
}

pub fn suggestions(args: SuggestionsArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let person = match &args.person {
        Some(name) => Some(person_or_fail(&store, name)?),
        None => None,
    };
    let groups =
        store.read(|c| suggest::groups(c, person, args.settings.face_match_dist, args.limit))?;
    if args.read.json {
        print_json_lines(&groups)?;
    } else {
        for g in &groups {
            let ids: Vec<String> = g.faces.iter().map(|f| format!("f{f}")).collect();
            println!("Is this also {}?\t{}", g.person, ids.join(" "));
        }
        if !groups.is_empty() {
            println!(
                "accept with `visage name FACE... NAME`; `visage reject FACE --person NAME` takes one out"
            );
        }
    }
    Ok(0)
}

fn person_or_fail(store: &Store, name: &str) -> anyhow::Result<i64> {
    match store.read(|c| people::person_id(c, name))? {
        Some(p) => Ok(p),
        None => bail!("no person named {name:?} (see `visage people`)"),
    }
}

pub fn history(args: HistoryArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let actions = store.read(|c| history::list(c, args.limit))?;
    if args.read.json {
        print_json_lines(&actions)?;
    } else {
        for a in &actions {
            println!(
                "#{}\t{}\t{}\t{} rows{}",
                a.id,
                a.kind,
                a.what,
                a.rows,
                if a.undone.is_some() { "\tundone" } else { "" }
            );
        }
    }
    Ok(0)
}

pub fn undo(args: UndoArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let undone = match args.action {
        Some(id) => vec![history::undo_action(&mut store, id)?],
        None => history::undo(&mut store, args.count)?,
    };
    if undone.is_empty() {
        println!("nothing to undo");
    }
    for a in &undone {
        println!("undid {a}");
    }
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
