//! The JSON API: reads (`/api/people`, `/api/clusters`, `/api/also`, `/api/faces`, `/api/photos/pN`,
//! `/api/suggestions`, `/api/progress`, `/api/ignored`, `/api/history`) through `people::report`,
//! `people::suggest`, `people::history` and `store`, and actions (`/api/name`, `rename`, `merge`,
//! `split`, `reject`, `ignore`, `unignore`, `hide`, `accept`, `confirm`, `mark`, `undo`), each the
//! very `people` operation the CLI command runs, recorded in the history. Naming, moving,
//! accepting and confirming faces run matching again in the same action and say how many more
//! faces joined.
//!
//! Ids are the CLI's: `cN`, `fN`, `pN`. Every refusal is a 4xx with `{"error": "..."}`. No
//! decision about faces is made here, and nothing here touches a file.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, PoisonError};

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, App};
use crate::people::{self, Ref, Rematch, assign, history, report, suggest};
use crate::store::faces::{self, FaceRow, Selection};
use crate::store::ids::IdError;
use crate::store::{ClusterId, FaceId, Item, PhotoId, Store, clusters, photos};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Longest name accepted, in characters.
pub const MAX_NAME: usize = 200;
/// Faces shown per cluster in the review list before "more".
pub const PREVIEW: usize = 12;
/// Page sizes: default and largest.
const FACES_PAGE: (usize, usize) = (100, 1000);
const CLUSTERS_PAGE: (usize, usize) = (report::REVIEW_PAGE, 200);

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(q: Params) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::bad(format!("bad query: {e}")))
}

/// `offset` and `limit` from the query, within bounds.
fn paging(
    q: &HashMap<String, String>,
    (default, max): (usize, usize),
) -> Result<(usize, usize), ApiError> {
    let number = |k: &str, d: usize| -> Result<usize, ApiError> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v
                .parse::<u32>()
                .map(|n| n as usize)
                .map_err(|_| ApiError::bad(format!("{k} must be a whole number, not {v:?}"))),
        }
    };
    let (offset, limit) = (number("offset", 0)?, number("limit", default)?);
    if limit > max {
        return Err(ApiError::bad(format!("limit is at most {max}")));
    }
    Ok((offset, limit))
}

/// An id of the kind asked for (`f345`, `c12`, `p7`, or a cluster or face for [`Ref`]), or a 400
/// that says what was expected.
fn id_of<T: FromStr<Err = IdError>>(s: &str) -> Result<T, ApiError> {
    s.parse().map_err(|e: IdError| ApiError::bad(e.to_string()))
}

fn face_ids(list: &[String]) -> Result<Vec<FaceId>, ApiError> {
    list.iter().map(|s| id_of(s)).collect()
}

/// A name as given: trimmed, not empty, not too long.
fn checked_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::bad("a person's name cannot be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::bad(format!(
            "a name is at most {MAX_NAME} characters"
        )));
    }
    Ok(name.to_string())
}

/// The JSON body of an action: `Content-Type: application/json` (which a cross-site form cannot
/// send), at most [`MAX_BODY`] bytes, with exactly the fields `T` has.
async fn body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim() == "application/json");
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as Content-Type: application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {MAX_BODY} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("bad JSON: {e}")))
}

fn ok<T: Serialize>(v: T) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(v)).into_response()
}

/// One page of a longer list: how many there are in all, where this page starts, and the page
/// (under `faces` or `clusters`).
#[derive(Serialize)]
struct Paged<T: Serialize> {
    total: usize,
    offset: usize,
    #[serde(flatten)]
    items: T,
}

#[derive(Serialize)]
struct Faces {
    faces: Vec<FaceRow>,
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

fn person_id(store: &Store, name: &str) -> Result<i64, ApiError> {
    store
        .read(|c| people::person_id(c, name))?
        .ok_or_else(|| ApiError::not_found(format!("no person named {name:?}")))
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

#[derive(Serialize)]
struct PersonOut {
    #[serde(flatten)]
    person: report::PersonSummary,
    /// The clearest face, standing for the person.
    face: Option<FaceId>,
}

/// `GET /api/people[?hidden=1]`: the people, most faces first, each with their clearest face.
pub async fn people(State(app): State<Arc<App>>, q: Params) -> Result<Response, ApiError> {
    let q = params(q)?;
    let hidden = q.get("hidden").is_some_and(|v| v == "1" || v == "true");
    app.blocking(move |app| {
        app.db.with(|store| {
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
    })
    .await
    .map(ok)
}

#[derive(Serialize)]
struct ClusterOut {
    #[serde(flatten)]
    cluster: report::ReviewCluster,
    /// Its first faces, largest first.
    preview: Vec<FaceRow>,
}

/// The faces offered with each of `clusters` (a page of them), as rows.
fn also_of(
    app: &App,
    store: &Store,
    clusters: &[ClusterId],
) -> Result<HashMap<ClusterId, Vec<FaceRow>>, ApiError> {
    let near = store.read(|c| {
        suggest::near_clusters(c, clusters, app.settings.face_match_dist, suggest::GROUP)
    })?;
    let mut out = HashMap::new();
    for (cluster, ids) in near {
        let mut rows = Vec::with_capacity(ids.len());
        for f in ids {
            if let Some(row) = store.read(|c| faces::get(c, f))? {
                rows.push(row);
            }
        }
        out.insert(cluster, rows);
    }
    Ok(out)
}

/// `GET /api/clusters[?offset&limit]`: the automatic clusters nobody has named yet, largest
/// first, each with its first faces. The faces offered with them come apart (`/api/also`): they
/// cost a scan of the faces in no cluster.
pub async fn clusters(State(app): State<Arc<App>>, q: Params) -> Result<Response, ApiError> {
    let (offset, limit) = paging(&params(q)?, CLUSTERS_PAGE)?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let (total, rows) = store.read(|c| report::review_clusters(c, offset, limit))?;
            let mut out = Vec::with_capacity(rows.len());
            for cluster in rows {
                let (_, preview) =
                    store.read(|c| faces::page(c, Selection::Cluster(cluster.id), 0, PREVIEW))?;
                out.push(ClusterOut { cluster, preview });
            }
            Ok(Paged {
                total,
                offset,
                items: Clusters { clusters: out },
            })
        })
    })
    .await
    .map(ok)
}

/// `GET /api/also?clusters=c1,c2,...`: for each of these unnamed clusters (a page of them), the
/// faces in no cluster that look like its members (`people::suggest::near_clusters`), as
/// `{"also": {"c1": [face rows]}}`; kept until the library changes (see [`super::Answers`]).
pub async fn also(State(app): State<Arc<App>>, q: Params) -> Result<Response, ApiError> {
    let q = params(q)?;
    let list = q
        .get("clusters")
        .ok_or_else(|| ApiError::bad("say which clusters: clusters=c1,c2"))?;
    let mut ids = Vec::new();
    for c in list.split(',').filter(|c| !c.is_empty()) {
        ids.push(id_of::<ClusterId>(c)?);
    }
    if ids.len() > CLUSTERS_PAGE.1 {
        return Err(ApiError::bad(format!(
            "at most {} clusters at once",
            CLUSTERS_PAGE.1
        )));
    }
    app.blocking(move |app| {
        app.db.with(|store| {
            let key = format!("also {ids:?}");
            app.answers.get(store, &key, |store| {
                let also = also_of(app, store, &ids)?;
                let also: serde_json::Map<String, serde_json::Value> = also
                    .into_iter()
                    .map(|(c, rows)| (c.to_string(), json!(rows)))
                    .collect();
                Ok(json!({ "also": also }))
            })
        })
    })
    .await
    .map(ok)
}

/// `GET /api/faces?person=NAME | cluster=cN | unassigned=1 [&offset&limit]`: one page of faces,
/// and how many there are in all. A person's come newest photo first; the others largest first.
pub async fn faces(State(app): State<Arc<App>>, q: Params) -> Result<Response, ApiError> {
    let q = params(q)?;
    let (offset, limit) = paging(&q, FACES_PAGE)?;
    let chosen = ["person", "cluster", "unassigned"]
        .iter()
        .filter(|k| q.contains_key(**k))
        .count();
    if chosen != 1 {
        return Err(ApiError::bad(
            "say which faces: exactly one of person=NAME, cluster=cN, unassigned=1",
        ));
    }
    let cluster = q.get("cluster").map(|c| id_of(c)).transpose()?;
    let person = q.get("person").cloned();
    app.blocking(move |app| {
        app.db.with(|store| {
            let selection = if let Some(name) = &person {
                Selection::Person(person_id(store, name)?)
            } else if let Some(c) = cluster {
                store
                    .read(|conn| clusters::get(conn, c))?
                    .ok_or_else(|| ApiError::not_found(format!("no {}", Item::Cluster(c))))?;
                Selection::Cluster(c)
            } else {
                Selection::Unassigned
            };
            let (total, rows) = store.read(|c| faces::page(c, selection, offset, limit))?;
            Ok(Paged {
                total,
                offset,
                items: Faces { faces: rows },
            })
        })
    })
    .await
    .map(ok)
}

/// `GET /api/photos/pN`: the photo (original size after orientation) and all its faces.
pub async fn photo(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: PhotoId = id_of(&id).map_err(|e| ApiError::not_found(e.message))?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let photo = store
                .read(|c| photos::get(c, id))?
                .ok_or_else(|| ApiError::not_found(format!("no {}", Item::Photo(id))))?;
            let (_, faces) = store.read(|c| faces::page(c, Selection::Photo(id), 0, 10_000))?;
            Ok(PhotoOut { photo, faces })
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameRequest {
    /// `c12` or `f345`.
    target: String,
    name: String,
    /// Faces of the cluster (or of those offered with it) that are not this person: rejected for
    /// the name.
    #[serde(default)]
    except: Vec<String>,
    /// Faces offered with the cluster (`/api/also`) that are this person too.
    #[serde(default)]
    also: Vec<String>,
}

/// `POST /api/name {"target": "c12" | "f345", "name": "...", "except": ["f3"], "also": ["f9"]}`:
/// `visage name` of the cluster and of the faces offered with it that the user kept (`also`),
/// each face in `except` (taken out) rejected for the name, then matching again; one action.
pub async fn name(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: NameRequest = body(&headers, b).await?;
    let target: Ref = id_of(&req.target)?;
    let name = checked_name(&req.name)?;
    let except = face_ids(&req.except)?;
    let also = face_ids(&req.also)?;
    app.blocking(move |app| {
        app.db.with(|store| {
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
                        .ok_or_else(|| ApiError::not_found(format!("no {}", Item::Face(f))))?;
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
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameRequest {
    old: String,
    new: String,
}

/// `POST /api/rename {"old": "...", "new": "..."}`: `visage rename`.
pub async fn rename(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: RenameRequest = body(&headers, b).await?;
    let new = checked_name(&req.new)?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = people::rename(store, &req.old, &new)?;
            Ok(json!({ "old": req.old, "new": new, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    from: String,
    into: String,
}

/// `POST /api/merge {"from": "...", "into": "..."}`: `visage merge-person`.
pub async fn merge(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: MergeRequest = body(&headers, b).await?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = people::merge(store, &req.from, &req.into)?;
            Ok(json!({ "from": req.from, "into": req.into, "moved": o.faces, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitRequest {
    faces: Vec<String>,
    to: String,
}

/// `POST /api/split {"faces": ["f1", ...], "to": "..."}`: `visage split`, then matching again.
pub async fn split(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: SplitRequest = body(&headers, b).await?;
    let faces = face_ids(&req.faces)?;
    if faces.is_empty() {
        return Err(ApiError::bad("say which faces to move"));
    }
    let to = checked_name(&req.to)?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = rematch(app, |r| {
                Ok(people::split(store, &faces, &to, &app.settings, Some(r))?)
            })?;
            let now = face_count(store, &to)?;
            Ok(
                json!({ "to": to, "moved": o.faces, "joined": o.joined, "faces": now,
                       "action": o.action }),
            )
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    faces: Vec<String>,
    /// The person they are not (default: each face's person now).
    #[serde(default)]
    person: Option<String>,
}

/// `POST /api/reject {"faces": ["f1", ...], "person": "..."}`: `visage reject` for each face.
pub async fn reject(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: RejectRequest = body(&headers, b).await?;
    let faces = face_ids(&req.faces)?;
    if faces.is_empty() {
        return Err(ApiError::bad("say which faces are not this person"));
    }
    app.blocking(move |app| {
        app.db.with(|store| {
            let (o, who) = people::reject(store, &faces, req.person.as_deref())?;
            Ok(json!({ "rejected": o.faces, "people": who, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreRequest {
    cluster: String,
}

/// `POST /api/ignore {"cluster": "c12"}`: `visage ignore`.
pub async fn ignore(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: IgnoreRequest = body(&headers, b).await?;
    let c: ClusterId = id_of(&req.cluster)?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = people::ignore(store, c)?;
            Ok(json!({ "ignored": c, "faces": o.faces, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HideRequest {
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
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: HideRequest = body(&headers, b).await?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = people::hide(store, &req.name, req.hidden)?;
            Ok(json!({ "name": req.name, "hidden": req.hidden, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

/// `POST /api/unignore {"cluster": "c12"}`: `visage unignore`: the cluster is back for review.
pub async fn unignore(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: IgnoreRequest = body(&headers, b).await?;
    let c: ClusterId = id_of(&req.cluster)?;
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = people::unignore(store, c)?;
            // Group its faces again right away, so they are back in Review.
            let backend = app.backend.lock().unwrap_or_else(PoisonError::into_inner);
            assign::rematch(store, &app.settings, &backend)?;
            Ok(json!({ "cluster": c, "faces": o.faces, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

/// `GET /api/ignored`: the ignored clusters, each with its first faces.
pub async fn ignored(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    app.blocking(move |app| {
        app.db.with(|store| {
            let rows = store.read(report::ignored_clusters)?;
            let mut out = Vec::with_capacity(rows.len());
            for cluster in rows {
                let (_, preview) =
                    store.read(|c| faces::page(c, Selection::Cluster(cluster.id), 0, PREVIEW))?;
                out.push(ClusterOut { cluster, preview });
            }
            Ok(json!({ "clusters": out }))
        })
    })
    .await
    .map(ok)
}

/// `GET /api/suggestions[?person=NAME]`: the unnamed faces that are probably someone, one group
/// per person (`{"person", "faces": [face rows]}`), best first.
pub async fn suggestions(State(app): State<Arc<App>>, q: Params) -> Result<Response, ApiError> {
    let q = params(q)?;
    let person = q.get("person").cloned();
    app.blocking(move |app| {
        app.db.with(|store| {
            let p = person.as_deref().map(|n| person_id(store, n)).transpose()?;
            app.answers
                .get(store, &format!("suggestions {p:?}"), |store| {
                    let groups =
                        store.read(|c| suggest::groups(c, p, &app.settings, suggest::GROUP))?;
                    let mut out = Vec::with_capacity(groups.len());
                    for g in groups {
                        let mut rows = Vec::with_capacity(g.faces.len());
                        for &f in &g.faces {
                            if let Some(row) = store.read(|c| faces::get(c, f))? {
                                rows.push(row);
                            }
                        }
                        out.push(json!({ "person": g.person, "faces": rows }));
                    }
                    Ok(json!({ "groups": out }))
                })
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptRequest {
    person: String,
    /// The suggested faces the user kept: they are this person.
    faces: Vec<String>,
    /// The suggested faces the user took out: they are not.
    #[serde(default)]
    except: Vec<String>,
}

/// `POST /api/accept {"person": "...", "faces": ["f1", ...], "except": ["f2"]}`: a suggestion
/// group accepted in one action (the faces named by hand, those taken out rejected for the
/// person), then matching again.
pub async fn accept(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: AcceptRequest = body(&headers, b).await?;
    let faces = face_ids(&req.faces)?;
    let except = face_ids(&req.except)?;
    if faces.is_empty() && except.is_empty() {
        return Err(ApiError::bad("say which faces are this person"));
    }
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = rematch(app, |r| {
                Ok(people::accept(
                    store,
                    &faces,
                    &req.person,
                    &except,
                    &app.settings,
                    Some(r),
                )?)
            })?;
            let now = face_count(store, &req.person)?;
            Ok(
                json!({ "person": req.person, "named": o.faces, "rejected": except.len(),
                       "joined": o.joined, "faces": now, "action": o.action }),
            )
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FacesRequest {
    faces: Vec<String>,
}

/// `POST /api/confirm {"faces": ["f1", ...]}`: faces matched automatically are confirmed as the
/// person they have (named by hand from now on), then matching again.
pub async fn confirm(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: FacesRequest = body(&headers, b).await?;
    let faces = face_ids(&req.faces)?;
    if faces.is_empty() {
        return Err(ApiError::bad("say which faces to confirm"));
    }
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = rematch(app, |r| {
                Ok(people::confirm(store, &faces, &app.settings, Some(r))?)
            })?;
            Ok(json!({ "confirmed": o.faces, "joined": o.joined, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkRequest {
    faces: Vec<String>,
    /// `"not_a_face"`, `"stranger"`, or `null` to take the mark away.
    verdict: Option<people::Verdict>,
}

/// `POST /api/mark {"faces": [...], "verdict": "not_a_face" | "stranger" | null}`: `visage mark`.
pub async fn mark(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: MarkRequest = body(&headers, b).await?;
    let faces = face_ids(&req.faces)?;
    if faces.is_empty() {
        return Err(ApiError::bad("say which faces to mark"));
    }
    app.blocking(move |app| {
        app.db.with(|store| {
            let o = people::set_verdict(store, &faces, req.verdict)?;
            Ok(json!({ "marked": o.faces, "verdict": req.verdict, "action": o.action }))
        })
    })
    .await
    .map(ok)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoRequest {
    /// How many of the last actions (default 1).
    #[serde(default)]
    count: Option<usize>,
}

/// `POST /api/undo {}` (or `{"count": N}`): `visage undo`; says what it undid.
pub async fn undo(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let req: UndoRequest = body(&headers, b).await?;
    let count = req.count.unwrap_or(1);
    if !(1..=100).contains(&count) {
        return Err(ApiError::bad("count is 1 to 100"));
    }
    app.blocking(move |app| {
        app.db.with(|store| {
            let undone = history::undo(store, count)?;
            Ok(json!({ "undone": undone }))
        })
    })
    .await
    .map(ok)
}

/// `GET /api/history[?limit=N]`: the recorded actions, newest first.
pub async fn history_list(State(app): State<Arc<App>>, q: Params) -> Result<Response, ApiError> {
    let (_, limit) = paging(&params(q)?, (50, 1000))?;
    app.blocking(move |app| {
        app.db
            .with(|store| Ok(json!({ "actions": store.read(|c| history::list(c, limit))? })))
    })
    .await
    .map(ok)
}

/// `GET /api/progress`: how far the user is: faces named by hand, matched, suggested, marked,
/// ignored, and left to name.
pub async fn progress(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    app.blocking(move |app| {
        app.db.with(|store| {
            app.answers.get(store, "progress", |store| {
                let mut p = store.read(report::progress)?;
                p.suggested = store.read(|c| suggest::count(c, &app.settings))?;
                serde_json::to_value(p).map_err(|e| ApiError::internal(e.to_string()))
            })
        })
    })
    .await
    .map(ok)
}
