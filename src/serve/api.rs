//! The JSON API: reads (`/api/people`, `/api/clusters`, `/api/also`, `/api/faces`, `/api/photos/pN`,
//! `/api/suggestions`, `/api/progress`, `/api/ignored`, `/api/history`) through `people::report`,
//! `people::suggest`, `people::history` and `store`, and actions (`/api/name`, `rename`, `merge`,
//! `split`, `reject`, `ignore`, `unignore`, `hide`, `accept`, `confirm`, `mark`, `undo`), each the
//! very `people` operation the CLI command runs, recorded in the history. Naming, moving,
//! accepting and confirming faces run matching again in the same action and say how many more
//! faces joined.
//!
//! A handler is thin: axum's `Query` and `Json` read the request into a typed struct ([`Params`],
//! [`Body`]), [`answer`] runs the work on a blocking thread with a connection to the library and
//! sends what it returns as JSON, and the error types decide the status ([`ApiError`]'s `From`
//! impls). Ids are the CLI's: `cN`, `fN`, `pN`. Every refusal is a 4xx with `{"error": "..."}`.
//! No decision about faces is made here, and nothing here touches a file.

use std::sync::{Arc, PoisonError};

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, App};
use crate::people::{self, Ref, Rematch, assign, history, report, suggest};
use crate::store::faces::{self, FaceRow, Selection, Start};
use crate::store::{ClusterId, FaceId, Item, PhotoId, Store, StoreError, clusters, photos};

/// Largest request body accepted (the router's body limit).
pub const MAX_BODY: usize = 1 << 20;
/// Faces shown per cluster in the review list before "more".
pub const PREVIEW: usize = 12;
/// Page sizes: default and largest.
const FACES_PAGE: (usize, usize) = (100, 1000);
const CLUSTERS_PAGE: (usize, usize) = (report::REVIEW_PAGE, 200);
const HISTORY_PAGE: (usize, usize) = (50, 1000);

/// A request's query string, read by axum's [`Query`] into `T` (fields it does not name, such as
/// `token`, are left to others). One that does not fit `T` is a 400 that says why.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Params(q))
    }
}

/// An action's body, read by axum's [`Json`] into `T`: `Content-Type: application/json` (which a
/// cross-site form cannot send), at most [`MAX_BODY`] bytes, exactly the fields `T` has. Anything
/// else is a 4xx that says why.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(body) = Json::<T>::from_request(req, state).await?;
        Ok(Body(body))
    }
}

/// The answer to a request: `work` runs on a blocking thread with a connection to the library,
/// and what it returns is sent as JSON that the browser does not cache.
async fn answer<T: Serialize + Send + 'static>(
    app: Arc<App>,
    work: impl FnOnce(&App, &mut Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let value = app
        .blocking(move |app| app.db.with(|store| work(app, store)))
        .await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(value)).into_response())
}

/// `offset` and `limit` of a listing.
#[derive(Deserialize)]
pub struct Paging {
    offset: Option<u32>,
    limit: Option<u32>,
}

impl Paging {
    /// `offset` (default 0) and `limit` (default and largest as given).
    fn bounds(&self, (default, max): (usize, usize)) -> Result<(usize, usize), ApiError> {
        let limit = self.limit.map_or(default, |n| n as usize);
        if limit > max {
            return Err(ApiError::bad(format!("limit is at most {max}")));
        }
        Ok((self.offset.unwrap_or(0) as usize, limit))
    }
}

/// Whether a query flag is on (`1` or `true`).
fn on(flag: &Option<String>) -> bool {
    flag.as_deref().is_some_and(|v| v == "1" || v == "true")
}

/// One page of a longer list: how many there are in all, where this page starts (when it was
/// asked by offset), and the page (under `faces` or `clusters`).
#[derive(Serialize)]
struct Paged<T: Serialize> {
    total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    #[serde(flatten)]
    items: T,
}

/// A page of faces, with the cursor that asks for the next one: `next` is the last face of a
/// full page (`after=` it), or null at the end.
#[derive(Serialize)]
struct Faces {
    faces: Vec<FaceRow>,
    next: Option<FaceId>,
}

#[derive(Serialize)]
struct Clusters {
    clusters: Vec<ClusterOut>,
}

#[derive(Serialize)]
struct PhotoOut {
    #[serde(flatten)]
    photo: photos::PhotoRow,
    faces: Vec<FaceRow>,
}

fn not_found(item: Item) -> ApiError {
    StoreError::NotFound(item).into()
}

fn person_id(store: &Store, name: &str) -> Result<i64, ApiError> {
    store
        .read(|c| people::person_id(c, name))?
        .ok_or_else(|| not_found(Item::Person(name.to_string())))
}

/// How many faces (of photos still present) the person has; 0 if there is no such person.
fn face_count(store: &Store, name: &str) -> Result<i64, ApiError> {
    let all = store.read(|c| report::people(c, true))?;
    Ok(all
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map_or(0, |p| p.faces))
}

/// Run `f` with matching after it (as `visage cluster` does), one run at a time.
fn rematch<T>(app: &App, f: impl FnOnce(Rematch) -> Result<T, ApiError>) -> Result<T, ApiError> {
    let backend = app.backend.lock().unwrap_or_else(PoisonError::into_inner);
    f(Rematch {
        settings: &app.settings,
        backend: &backend,
    })
}

/// The rows of `ids`, those still there.
fn rows(store: &Store, ids: &[FaceId]) -> Result<Vec<FaceRow>, ApiError> {
    let mut rows = Vec::with_capacity(ids.len());
    for &f in ids {
        if let Some(row) = store.read(|c| faces::get(c, f))? {
            rows.push(row);
        }
    }
    Ok(rows)
}

#[derive(Serialize)]
struct PersonOut {
    #[serde(flatten)]
    person: report::PersonSummary,
    /// The clearest face, standing for the person.
    face: Option<FaceId>,
}

#[derive(Deserialize)]
pub struct PeopleQuery {
    hidden: Option<String>,
}

/// `GET /api/people[?hidden=1]`: the people, most faces first, each with their clearest face.
pub async fn people(
    State(app): State<Arc<App>>,
    Params(q): Params<PeopleQuery>,
) -> Result<Response, ApiError> {
    let hidden = on(&q.hidden);
    answer(app, move |_, store| {
        let rows = store.read(|c| report::people(c, hidden))?;
        let covers = store.read(report::covers)?;
        let out: Vec<PersonOut> = rows
            .into_iter()
            .map(|p| PersonOut {
                face: covers.get(&p.name).copied(),
                person: p,
            })
            .collect();
        Ok(out)
    })
    .await
}

#[derive(Serialize)]
struct ClusterOut {
    #[serde(flatten)]
    cluster: report::ReviewCluster,
    /// Its first faces, largest first.
    preview: Vec<FaceRow>,
}

/// Each cluster with its first faces.
fn with_previews(
    store: &Store,
    clusters: Vec<report::ReviewCluster>,
) -> Result<Vec<ClusterOut>, ApiError> {
    let mut out = Vec::with_capacity(clusters.len());
    for cluster in clusters {
        let preview = store
            .read(|c| faces::rows(c, Selection::Cluster(cluster.id), Start::Offset(0), PREVIEW))?;
        out.push(ClusterOut { cluster, preview });
    }
    Ok(out)
}

/// `GET /api/clusters[?offset&limit]`: the automatic clusters nobody has named yet, largest
/// first, each with its first faces. The faces offered with them come apart (`/api/also`): they
/// cost a scan of the faces in no cluster.
pub async fn clusters(
    State(app): State<Arc<App>>,
    Params(paging): Params<Paging>,
) -> Result<Response, ApiError> {
    let (offset, limit) = paging.bounds(CLUSTERS_PAGE)?;
    answer(app, move |_, store| {
        let (total, rows) = store.read(|c| report::review_clusters(c, offset, limit))?;
        Ok(Paged {
            total,
            offset: Some(offset),
            items: Clusters {
                clusters: with_previews(store, rows)?,
            },
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct AlsoQuery {
    /// `c1,c2,...`
    clusters: Option<String>,
}

/// `GET /api/also?clusters=c1,c2,...`: for each of these unnamed clusters (a page of them), the
/// faces in no cluster that look like its members (`people::suggest::near_clusters`), as
/// `{"also": {"c1": [face rows]}}`; kept until the library changes (see [`super::Answers`]).
pub async fn also(
    State(app): State<Arc<App>>,
    Params(q): Params<AlsoQuery>,
) -> Result<Response, ApiError> {
    let list = q
        .clusters
        .ok_or_else(|| ApiError::bad("say which clusters: clusters=c1,c2"))?;
    let ids = list
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<ClusterId>()
                .map_err(|e| ApiError::bad(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() > CLUSTERS_PAGE.1 {
        return Err(ApiError::bad(format!(
            "at most {} clusters at once",
            CLUSTERS_PAGE.1
        )));
    }
    answer(app, move |app, store| {
        app.answers.get(store, &format!("also {ids:?}"), |store| {
            let near = store.read(|c| {
                suggest::near_clusters(c, &ids, app.settings.face_match_dist, suggest::GROUP)
            })?;
            let mut also = serde_json::Map::new();
            for (cluster, faces) in near {
                also.insert(cluster.to_string(), json!(rows(store, &faces)?));
            }
            Ok(json!({ "also": also }))
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct FacesQuery {
    person: Option<String>,
    cluster: Option<ClusterId>,
    unassigned: Option<String>,
    /// The face after which the page starts (the previous page's `next`), instead of an offset.
    after: Option<FaceId>,
}

/// `GET /api/faces?person=NAME | cluster=cN | unassigned=1 [&offset | &after=fN][&limit]`: one
/// page of faces, how many there are in all, and `next`, the cursor of the page after it
/// (`after=fN` finds its place at once, however deep; an offset walks an index that far). A
/// person's come newest photo first; the others largest first.
pub async fn faces(
    State(app): State<Arc<App>>,
    Params(q): Params<FacesQuery>,
    Params(paging): Params<Paging>,
) -> Result<Response, ApiError> {
    let (offset, limit) = paging.bounds(FACES_PAGE)?;
    let chosen = [
        q.person.is_some(),
        q.cluster.is_some(),
        q.unassigned.is_some(),
    ];
    if chosen.iter().filter(|&&c| c).count() != 1 {
        return Err(ApiError::bad(
            "say which faces: exactly one of person=NAME, cluster=cN, unassigned=1",
        ));
    }
    if q.after.is_some() && paging.offset.is_some() {
        return Err(ApiError::bad(
            "say where the page starts by offset or after, not both",
        ));
    }
    answer(app, move |_, store| {
        let selection = if let Some(name) = &q.person {
            Selection::Person(person_id(store, name)?)
        } else if let Some(c) = q.cluster {
            store
                .read(|conn| clusters::get(conn, c))?
                .ok_or_else(|| not_found(Item::Cluster(c)))?;
            Selection::Cluster(c)
        } else {
            Selection::Unassigned
        };
        let start = q.after.map_or(Start::Offset(offset), Start::After);
        let total = store.read(|c| faces::total(c, selection))?;
        let rows = store.read(|c| faces::rows(c, selection, start, limit))?;
        let next = match rows.last() {
            Some(last) if rows.len() == limit => Some(last.id),
            _ => None,
        };
        Ok(Paged {
            total,
            offset: q.after.is_none().then_some(offset),
            items: Faces { faces: rows, next },
        })
    })
    .await
}

/// `GET /api/photos/pN`: the photo (original size after orientation) and all its faces. A path
/// that is not a photo's id is a 404, as any other path that leads nowhere.
pub async fn photo(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: PhotoId = id
        .parse()
        .map_err(|e| ApiError::not_found(format!("{e}")))?;
    answer(app, move |_, store| {
        let photo = store
            .read(|c| photos::get(c, id))?
            .ok_or_else(|| not_found(Item::Photo(id)))?;
        let (_, faces) = store.read(|c| faces::page(c, Selection::Photo(id), 0, 10_000))?;
        Ok(PhotoOut { photo, faces })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRequest {
    /// `c12` or `f345`.
    target: Ref,
    name: String,
    /// Faces of the cluster (or of those offered with it) that are not this person: rejected for
    /// the name.
    #[serde(default)]
    except: Vec<FaceId>,
    /// Faces offered with the cluster (`/api/also`) that are this person too.
    #[serde(default)]
    also: Vec<FaceId>,
}

/// `POST /api/name {"target": "c12" | "f345", "name": "...", "except": ["f3"], "also": ["f9"]}`:
/// `visage name` of the cluster and of the faces offered with it that the user kept (`also`),
/// each face in `except` (taken out) rejected for the name, then matching again; one action.
pub async fn name(
    State(app): State<Arc<App>>,
    Body(req): Body<NameRequest>,
) -> Result<Response, ApiError> {
    let name = people::checked_name(&req.name)?.to_string();
    let (target, except, also) = (req.target, req.except, req.also);
    answer(app, move |app, store| {
        if !except.is_empty() || !also.is_empty() {
            let Ref::Cluster(c) = target else {
                return Err(ApiError::bad(
                    "\"except\" and \"also\" go with a cluster target",
                ));
            };
            let offered = store.read(|conn| {
                suggest::near_cluster(conn, c, app.settings.face_match_dist, usize::MAX)
            })?;
            for &f in except.iter().chain(&also) {
                let row = store
                    .read(|conn| faces::get(conn, f))?
                    .ok_or_else(|| not_found(Item::Face(f)))?;
                let member = row.cluster == Some(c);
                if !member && !offered.contains(&f) {
                    return Err(ApiError::bad(format!(
                        "{f} is not in {c} nor offered with it"
                    )));
                }
                if member && also.contains(&f) {
                    return Err(ApiError::bad(format!("{f} is in {c} already")));
                }
            }
        }
        let mut targets = vec![target];
        targets.extend(also.iter().map(|&f| Ref::Face(f)));
        let before = face_count(store, &name)?;
        let o = rematch(app, |r| {
            Ok(people::name_several(
                store,
                &targets,
                &name,
                &except,
                &app.settings,
                Some(r),
            )?)
        })?;
        let now = face_count(store, &name)?;
        Ok(json!({
            "person": name,
            "named": o.faces,
            "rejected": except.len(),
            "joined": o.joined,
            "faces": now,
            "before": before,
            "action": o.action,
        }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    old: String,
    new: String,
}

/// `POST /api/rename {"old": "...", "new": "..."}`: `visage rename`.
pub async fn rename(
    State(app): State<Arc<App>>,
    Body(req): Body<RenameRequest>,
) -> Result<Response, ApiError> {
    let new = people::checked_name(&req.new)?.to_string();
    answer(app, move |_, store| {
        let o = people::rename(store, &req.old, &new)?;
        Ok(json!({ "old": req.old, "new": new, "action": o.action }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    from: String,
    into: String,
}

/// `POST /api/merge {"from": "...", "into": "..."}`: `visage merge-person`.
pub async fn merge(
    State(app): State<Arc<App>>,
    Body(req): Body<MergeRequest>,
) -> Result<Response, ApiError> {
    answer(app, move |_, store| {
        let o = people::merge(store, &req.from, &req.into)?;
        Ok(json!({ "from": req.from, "into": req.into, "moved": o.faces, "action": o.action }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    faces: Vec<FaceId>,
    to: String,
}

/// `POST /api/split {"faces": ["f1", ...], "to": "..."}`: `visage split`, then matching again.
pub async fn split(
    State(app): State<Arc<App>>,
    Body(req): Body<SplitRequest>,
) -> Result<Response, ApiError> {
    if req.faces.is_empty() {
        return Err(ApiError::bad("say which faces to move"));
    }
    let to = people::checked_name(&req.to)?.to_string();
    answer(app, move |app, store| {
        let o = rematch(app, |r| {
            Ok(people::split(
                store,
                &req.faces,
                &to,
                &app.settings,
                Some(r),
            )?)
        })?;
        let now = face_count(store, &to)?;
        Ok(
            json!({ "to": to, "moved": o.faces, "joined": o.joined, "faces": now,
                   "action": o.action }),
        )
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    faces: Vec<FaceId>,
    /// The person they are not (default: each face's person now).
    #[serde(default)]
    person: Option<String>,
}

/// `POST /api/reject {"faces": ["f1", ...], "person": "..."}`: `visage reject` for each face.
pub async fn reject(
    State(app): State<Arc<App>>,
    Body(req): Body<RejectRequest>,
) -> Result<Response, ApiError> {
    if req.faces.is_empty() {
        return Err(ApiError::bad("say which faces are not this person"));
    }
    answer(app, move |_, store| {
        let (o, who) = people::reject(store, &req.faces, req.person.as_deref())?;
        Ok(json!({ "rejected": o.faces, "people": who, "action": o.action }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRequest {
    cluster: ClusterId,
}

/// `POST /api/ignore {"cluster": "c12"}`: `visage ignore`.
pub async fn ignore(
    State(app): State<Arc<App>>,
    Body(req): Body<ClusterRequest>,
) -> Result<Response, ApiError> {
    let c = req.cluster;
    answer(app, move |_, store| {
        let o = people::ignore(store, c)?;
        Ok(json!({ "ignored": c, "faces": o.faces, "action": o.action }))
    })
    .await
}

/// `POST /api/unignore {"cluster": "c12"}`: `visage unignore`: the cluster is back for review,
/// its faces grouped again right away.
pub async fn unignore(
    State(app): State<Arc<App>>,
    Body(req): Body<ClusterRequest>,
) -> Result<Response, ApiError> {
    let c = req.cluster;
    answer(app, move |app, store| {
        let o = people::unignore(store, c)?;
        let backend = app.backend.lock().unwrap_or_else(PoisonError::into_inner);
        assign::rematch(store, &app.settings, &backend)?;
        Ok(json!({ "cluster": c, "faces": o.faces, "action": o.action }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HideRequest {
    name: String,
    /// `false` shows the person again (`visage unhide`).
    #[serde(default = "yes")]
    hidden: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/hide {"name": "...", "hidden": true | false}`: `visage hide` / `visage unhide`.
pub async fn hide(
    State(app): State<Arc<App>>,
    Body(req): Body<HideRequest>,
) -> Result<Response, ApiError> {
    answer(app, move |_, store| {
        let o = people::hide(store, &req.name, req.hidden)?;
        Ok(json!({ "name": req.name, "hidden": req.hidden, "action": o.action }))
    })
    .await
}

/// `GET /api/ignored`: the ignored clusters, each with its first faces.
pub async fn ignored(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    answer(app, move |_, store| {
        let rows = store.read(report::ignored_clusters)?;
        Ok(json!({ "clusters": with_previews(store, rows)? }))
    })
    .await
}

#[derive(Deserialize)]
pub struct SuggestionsQuery {
    person: Option<String>,
}

/// `GET /api/suggestions[?person=NAME]`: the unnamed faces that are probably someone, one group
/// per person (`{"person", "faces": [face rows]}`), best first.
pub async fn suggestions(
    State(app): State<Arc<App>>,
    Params(q): Params<SuggestionsQuery>,
) -> Result<Response, ApiError> {
    answer(app, move |app, store| {
        let p = q
            .person
            .as_deref()
            .map(|n| person_id(store, n))
            .transpose()?;
        app.answers
            .get(store, &format!("suggestions {p:?}"), |store| {
                let groups =
                    store.read(|c| suggest::groups(c, p, &app.settings, suggest::GROUP))?;
                let mut out = Vec::with_capacity(groups.len());
                for g in groups {
                    out.push(json!({ "person": g.person, "faces": rows(store, &g.faces)? }));
                }
                Ok(json!({ "groups": out }))
            })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    person: String,
    /// The suggested faces the user kept: they are this person.
    faces: Vec<FaceId>,
    /// The suggested faces the user took out: they are not.
    #[serde(default)]
    except: Vec<FaceId>,
}

/// `POST /api/accept {"person": "...", "faces": ["f1", ...], "except": ["f2"]}`: a suggestion
/// group accepted in one action (the faces named by hand, those taken out rejected for the
/// person), then matching again.
pub async fn accept(
    State(app): State<Arc<App>>,
    Body(req): Body<AcceptRequest>,
) -> Result<Response, ApiError> {
    if req.faces.is_empty() && req.except.is_empty() {
        return Err(ApiError::bad("say which faces are this person"));
    }
    answer(app, move |app, store| {
        let o = rematch(app, |r| {
            Ok(people::accept(
                store,
                &req.faces,
                &req.person,
                &req.except,
                &app.settings,
                Some(r),
            )?)
        })?;
        let now = face_count(store, &req.person)?;
        Ok(
            json!({ "person": req.person, "named": o.faces, "rejected": req.except.len(),
                   "joined": o.joined, "faces": now, "action": o.action }),
        )
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacesRequest {
    faces: Vec<FaceId>,
}

/// `POST /api/confirm {"faces": ["f1", ...]}`: faces matched automatically are confirmed as the
/// person they have (named by hand from now on), then matching again.
pub async fn confirm(
    State(app): State<Arc<App>>,
    Body(req): Body<FacesRequest>,
) -> Result<Response, ApiError> {
    if req.faces.is_empty() {
        return Err(ApiError::bad("say which faces to confirm"));
    }
    answer(app, move |app, store| {
        let o = rematch(app, |r| {
            Ok(people::confirm(store, &req.faces, &app.settings, Some(r))?)
        })?;
        Ok(json!({ "confirmed": o.faces, "joined": o.joined, "action": o.action }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRequest {
    faces: Vec<FaceId>,
    /// `"not_a_face"`, `"stranger"`, or `null` to take the mark away.
    verdict: Option<people::Verdict>,
}

/// `POST /api/mark {"faces": [...], "verdict": "not_a_face" | "stranger" | null}`: `visage mark`.
pub async fn mark(
    State(app): State<Arc<App>>,
    Body(req): Body<MarkRequest>,
) -> Result<Response, ApiError> {
    if req.faces.is_empty() {
        return Err(ApiError::bad("say which faces to mark"));
    }
    answer(app, move |_, store| {
        let o = people::set_verdict(store, &req.faces, req.verdict)?;
        Ok(json!({ "marked": o.faces, "verdict": req.verdict, "action": o.action }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// How many of the last actions (default 1).
    #[serde(default)]
    count: Option<usize>,
}

/// `POST /api/undo {}` (or `{"count": N}`): `visage undo`; says what it undid.
pub async fn undo(
    State(app): State<Arc<App>>,
    Body(req): Body<UndoRequest>,
) -> Result<Response, ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=100).contains(&count) {
        return Err(ApiError::bad("count is 1 to 100"));
    }
    answer(app, move |_, store| {
        Ok(json!({ "undone": history::undo(store, count)? }))
    })
    .await
}

/// `GET /api/history[?limit=N]`: the recorded actions, newest first.
pub async fn history_list(
    State(app): State<Arc<App>>,
    Params(paging): Params<Paging>,
) -> Result<Response, ApiError> {
    let (_, limit) = paging.bounds(HISTORY_PAGE)?;
    answer(app, move |_, store| {
        Ok(json!({ "actions": store.read(|c| history::list(c, limit))? }))
    })
    .await
}

/// `GET /api/progress`: how far the user is: faces named by hand, matched, suggested, marked,
/// ignored, and left to name.
pub async fn progress(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    answer(app, move |app, store| {
        app.answers.get(store, "progress", |store| {
            let mut p = store.read(report::progress)?;
            p.suggested = store.read(|c| suggest::count(c, &app.settings))?;
            serde_json::to_value(p).map_err(|e| ApiError::internal(e.to_string()))
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_keeps_its_bounds() {
        let p = |offset, limit| Paging { offset, limit };
        assert_eq!(p(None, None).bounds((100, 1000)).unwrap(), (0, 100));
        assert_eq!(
            p(Some(7), Some(1000)).bounds((100, 1000)).unwrap(),
            (7, 1000)
        );
        let e = p(None, Some(1001)).bounds((100, 1000)).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn flags_are_one_or_true() {
        assert!(on(&Some("1".into())) && on(&Some("true".into())));
        assert!(!on(&None) && !on(&Some("0".into())) && !on(&Some("yes".into())));
    }
}
