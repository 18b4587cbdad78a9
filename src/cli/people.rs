//! The people commands: reading (`people`, `person`, `faces`, `clusters`, `stats`, `audit`,
//! `suggestions`, `history`) and deciding (`name`, `rename`, `merge-person`, `split`, `reject`,
//! `ignore`, `unignore`, `hide`, `unhide`, `mark`, `undo`, `reset`). Every read command takes
//! `--json` (one JSON value per line). Decisions that name faces run matching afterwards, as the
//! review page does, in the same recorded action.

use clap::Args;
use serde::Serialize;

use super::StoreArgs;
use super::words::{plural, say_empty};
use crate::config::Settings;
use crate::graph::GraphBackend;
use crate::people::{self, Outcome, Ref, Rematch, history, report, suggest};
use crate::store::{ClusterId, FaceId, Item, Store, StoreError, clusters, faces};

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Clusters listed by `visage clusters` unless told otherwise.
pub const CLUSTERS_PAGE: usize = 100;

#[derive(Debug, Args)]
pub struct ClustersArgs {
    /// List at most this many (the largest first)
    #[arg(long, default_value_t = CLUSTERS_PAGE, conflicts_with = "all")]
    pub limit: usize,
    /// Skip this many of the largest first
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// List every cluster (a long list in a large library)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub read: ReadArgs,
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
    #[arg(required = true)]
    pub faces: Vec<FaceId>,
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
            let ids: Vec<String> = p.faces.iter().map(FaceId::to_string).collect();
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
        && store.read(|conn| clusters::get(conn, c))?.is_none()
    {
        return Err(StoreError::NotFound(Item::Cluster(c)).into());
    }
    let filter = faces::Filter {
        person,
        cluster: args.cluster,
        unassigned: args.unassigned,
    };
    let list = store.read(|c| faces::list(c, filter))?;
    for f in &list {
        if args.read.json {
            println!("{}", serde_json::to_string(f)?);
        } else {
            println!(
                "{}\t{}\t{:.0},{:.0} {:.0}x{:.0}\tscore {:.1}\t{}\t{}{}",
                f.id,
                f.path,
                f.x,
                f.y,
                f.w,
                f.h,
                f.score,
                f.cluster.map_or("-".into(), |c| c.to_string()),
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

pub fn clusters(args: ClustersArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let limit = (!args.all).then_some(args.limit);
    let rows = store.read(|c| clusters::largest(c, args.offset, limit))?;
    let total = store.read(report::tally)?.clusters() as usize;
    if total == 0 {
        say_empty(
            args.read.json,
            "no clusters yet: `visage cluster` groups similar faces (`visage index DIR` finds \
             them first)",
        );
    }
    for line in &rows {
        if args.read.json {
            println!("{}", serde_json::to_string(line)?);
        } else {
            println!(
                "{}\t{}\t{}\t{}, radius {:.2}\te.g. {}",
                line.row.id,
                line.row.kind.as_str(),
                line.row.person.as_deref().unwrap_or("-"),
                plural(line.faces, "face"),
                line.row.radius,
                line.example.as_deref().unwrap_or("-")
            );
        }
    }
    let shown = args.offset.min(total) + rows.len();
    if shown < total || args.offset > 0 {
        // On stderr, so that `--json` stays one cluster per line.
        eprintln!(
            "visage: clusters {} to {} of {total}, most faces first{}",
            (args.offset + 1).min(shown),
            shown,
            if shown < total {
                format!("; `--offset {shown}` lists the next ones, `--all` every one",)
            } else {
                String::new()
            }
        );
    }
    Ok(0)
}

pub fn stats(args: ReadArgs) -> anyhow::Result<i32> {
    let store = args.store.open()?;
    let s = store.snapshot(report::stats)?;
    let c = &s.counts;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "photos {} ({} failed, {} gone)\nfaces {}: {} clustered, {} named by hand, \
             {} matched automatically, {} ambiguous, {} unassigned\n\
             clusters: {} automatic, {} named, {} ignored; people {}; rejections {}",
            c.photos,
            c.photos_failed,
            c.photos_gone,
            c.faces,
            c.faces_clustered,
            c.faces_manual,
            c.faces_auto,
            c.faces_ambiguous,
            c.faces_unassigned,
            c.clusters_auto,
            c.clusters_manual,
            c.clusters_ignored,
            c.people,
            c.rejections
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
    let findings = people::audit::audit(&mut store, args.fix)?;
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
        "named {} {:?}{}",
        plural(o.faces, "face"),
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

pub fn merge_person(args: MergePersonArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let o = people::merge(&mut store, &args.from, &args.into)?;
    println!(
        "merged {:?} into {:?} ({} moved)",
        args.from,
        args.into,
        plural(o.faces, "face")
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
    println!(
        "moved {} to {:?}{}",
        plural(o.faces, "face"),
        args.to,
        joined(&o)
    );
    Ok(0)
}

pub fn reject(args: RejectArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let (_, who) = people::reject(&mut store, &[args.face], args.person.as_deref())?;
    println!(
        "{} is not {:?}; it will not be matched to them again",
        args.face,
        who.first().cloned().unwrap_or_default()
    );
    Ok(0)
}

pub fn ignore(args: IgnoreArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let o = people::ignore(&mut store, args.cluster)?;
    println!("ignoring {} ({})", args.cluster, plural(o.faces, "face"));
    Ok(0)
}

pub fn unignore(args: IgnoreArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let o = people::unignore(&mut store, args.cluster)?;
    println!(
        "{} is back for review ({})",
        args.cluster,
        plural(o.faces, "face")
    );
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

pub fn mark(args: MarkArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let verdict = match args.verdict {
        MarkChoice::NotAFace => Some(people::Verdict::NotAFace),
        MarkChoice::Stranger => Some(people::Verdict::Stranger),
        MarkChoice::Face => None,
    };
    let o = people::set_verdict(&mut store, &args.faces, verdict)?;
    println!(
        "marked {} {}",
        plural(o.faces, "face"),
        verdict.map_or("to review again", |v| match v {
            people::Verdict::NotAFace => "not a face",
            people::Verdict::Stranger => "as strangers",
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
    let groups = store.read(|c| suggest::groups(c, person, &args.settings, args.limit))?;
    if groups.is_empty() {
        say_empty(
            args.read.json,
            "no suggestions: name someone first (`visage name`), or every face like theirs is decided",
        );
    }
    if args.read.json {
        print_json_lines(&groups)?;
    } else {
        for g in &groups {
            let ids: Vec<String> = g.faces.iter().map(FaceId::to_string).collect();
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
        None => Err(StoreError::NotFound(Item::Person(name.to_string())).into()),
    }
}

pub fn history(args: HistoryArgs) -> anyhow::Result<i32> {
    let store = args.read.store.open()?;
    let actions = store.read(|c| history::list(c, args.limit))?;
    if actions.is_empty() {
        say_empty(args.read.json, "no decisions recorded yet");
    }
    if args.read.json {
        print_json_lines(&actions)?;
    } else {
        for a in &actions {
            println!(
                "#{}\t{}\t{}\t{}{}",
                a.id,
                a.kind,
                a.what,
                plural(a.rows as usize, "row"),
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
        "reset: {} and {} removed, {} cleared (`visage cluster` clusters and matches again)",
        plural(r.clusters, "cluster"),
        plural(r.people, "person"),
        plural(r.faces_cleared, "face")
    );
    Ok(0)
}
