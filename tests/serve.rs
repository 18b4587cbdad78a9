//! The review page's server on the real indexed 5-celebrity library. The API's behaviour in
//! process (`serve::router` driven with tower's `oneshot`, see `server::Api`): listings and
//! paging, thumbnails cut from the original photo, every action and its effect in `visage people
//! --json`, path traversal, bad requests, escaping, a gone photo, `visage index` running next to
//! the server, faces offered with clusters. Over a real socket (`visage serve` on an ephemeral
//! port): the token, Host and Origin checks, bytes that are not HTTP, `--allow-remote`, and a
//! healthy log.

use crate::common::{self, mean_abs_diff};
use std::collections::HashSet;

use crate::server::{self, Api, Client, Library, Server, library, request};
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// The review list: automatic clusters, largest first.
fn clusters(s: &impl Client) -> Vec<Value> {
    let r = s.get("/api/clusters?limit=200");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["clusters"].as_array().unwrap().clone()
}

fn jpeg_of(r: &server::Response) -> image::RgbImage {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    image::load_from_memory_with_format(&r.body, image::ImageFormat::Jpeg)
        .expect("a decodable JPEG")
        .into_rgb8()
}

#[test]
fn lists_pages_thumbnails_and_photos() {
    let lib = library("serve-list");
    let s = Api::new(&lib);
    let faces = lib.faces();

    // Nobody is named yet; the five people are automatic clusters, largest first.
    assert_eq!(s.get("/api/people").json(), json!([]));
    let list = clusters(&s);
    assert!(list.len() >= 4, "{list:?}");
    let sizes: Vec<u64> = list.iter().map(|c| c["faces"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    for c in &list {
        let cid = c["id"].as_str().unwrap();
        assert!(cid.starts_with('c'), "{c}");
        let in_cluster = faces.iter().filter(|f| f["cluster"] == cid).count() as u64;
        assert_eq!(c["faces"].as_u64().unwrap(), in_cluster, "{c}");
        let preview = c["preview"].as_array().unwrap();
        assert_eq!(preview.len() as u64, in_cluster.min(12));
        assert!(preview.iter().all(|f| f["cluster"] == cid));
    }
    let r = s.get("/api/clusters?limit=0");
    assert_eq!(r.json()["total"].as_u64(), Some(list.len() as u64));

    // Paging through the largest cluster three at a time gives each of its faces once, largest
    // first, with the ids `visage faces --json` prints.
    let big = &list[0];
    let cid = big["id"].as_str().unwrap();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = s
            .get(&format!("/api/faces?cluster={cid}&offset={offset}&limit=3"))
            .json();
        assert_eq!(page["total"], big["faces"]);
        let got = ids(&page["faces"]);
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 3);
        offset += got.len();
        seen.extend(page["faces"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(seen.len() as u64, big["faces"].as_u64().unwrap());
    let unique: HashSet<&str> = seen.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), seen.len());
    let size = |f: &Value| f["size"].as_u64().unwrap();
    assert!(seen.windows(2).all(|w| size(&w[0]) >= size(&w[1])));
    for f in &seen {
        let cli = faces.iter().find(|c| c["id"] == f["id"]).unwrap();
        assert_eq!(
            cli, f,
            "the API and `visage faces --json` describe a face alike"
        );
        assert!(f["photo"].as_str().unwrap().starts_with('p'));
    }

    // Unassigned faces: the ones in no cluster and of no person.
    let unassigned = faces
        .iter()
        .filter(|f| f["cluster"].is_null() && f["person"].is_null())
        .count();
    let page = s.get("/api/faces?unassigned=1&limit=1000").json();
    assert_eq!(page["total"].as_u64(), Some(unassigned as u64));
    assert_eq!(page["faces"].as_array().unwrap().len(), unassigned);
    assert!(
        page["next"].is_null(),
        "one page holds them all: {}",
        page["next"]
    );
    let all = ids(&page["faces"]);
    assert!(all.len() >= 5, "{all:?}");
    // Two at a time, by offset and by cursor (`after` the previous page's `next`): every face
    // once, in the one page's order, and the same total on every page.
    for by_cursor in [false, true] {
        let (mut got, mut offset, mut next) = (Vec::new(), 0, None::<String>);
        loop {
            let target = match (&next, by_cursor) {
                (Some(f), true) => format!("/api/faces?unassigned=1&limit=2&after={f}"),
                _ => format!("/api/faces?unassigned=1&limit=2&offset={offset}"),
            };
            let page = s.get(&target).json();
            assert_eq!(page["total"].as_u64(), Some(unassigned as u64), "{target}");
            let these = ids(&page["faces"]);
            offset += these.len();
            got.extend(these);
            match page["next"].as_str() {
                Some(f) => {
                    assert_eq!(Some(f), got.last().map(String::as_str), "{target}");
                    next = Some(f.to_string());
                }
                None => break,
            }
            assert!(got.len() <= all.len(), "{target}: more pages than faces");
        }
        assert_eq!(got, all, "by cursor: {by_cursor}");
    }
    // A cluster's faces by cursor too; an offset and a cursor at once are refused.
    let first = s.get(&format!("/api/faces?cluster={cid}&limit=2")).json();
    let after = first["next"].as_str().unwrap();
    let rest = s
        .get(&format!(
            "/api/faces?cluster={cid}&limit=1000&after={after}"
        ))
        .json();
    let mut by_cursor = ids(&first["faces"]);
    by_cursor.extend(ids(&rest["faces"]));
    let by_offset: Vec<String> = seen
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(by_cursor, by_offset);
    let r = s.get(&format!("/api/faces?unassigned=1&offset=2&after={after}"));
    assert_eq!(r.status, 400, "{}", r.text());

    // A thumbnail: a square JPEG of 256 px cut around the face from the original photo.
    let face = &seen[0];
    let r = s.get(&format!("/faces/{}.jpg", face["id"].as_str().unwrap()));
    let thumb = jpeg_of(&r);
    assert_eq!(thumb.dimensions(), (256, 256));
    let expected = expected_thumbnail(face);
    let diff = mean_abs_diff(&thumb, &expected);
    assert!(
        diff < 8.0,
        "thumbnail differs from the face's square by {diff}"
    );
    // Not just any square of the photo: a corner of it differs.
    let corner = image::imageops::resize(
        &image::imageops::crop_imm(&original(face), 0, 0, 40, 40).to_image(),
        256,
        256,
        image::imageops::FilterType::CatmullRom,
    );
    assert!(mean_abs_diff(&thumb, &corner) > diff + 5.0);
    // Cached on disk, served again with the same ETag, and 304 when the browser has it.
    let etag = r.header("etag").expect("an ETag").to_string();
    let cached = walkdir::WalkDir::new(lib.cache.join("visage/thumbs"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        .count();
    assert!(cached >= 1, "no thumbnail in the cache");
    let again = s.get(&format!("/faces/{}.jpg", face["id"].as_str().unwrap()));
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.body, r.body);
    let not_modified = s.request(
        "GET",
        &format!("/faces/{}.jpg", face["id"].as_str().unwrap()),
        &[
            ("X-Visage-Token", s.token()),
            ("If-None-Match", etag.as_str()),
        ],
        b"",
    );
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());

    // Thumbnails of many faces at once (in parallel on the server) all come back whole.
    let batch: Vec<String> = seen
        .iter()
        .take(12)
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    std::thread::scope(|scope| {
        for id in &batch {
            let s = &s;
            scope.spawn(move || {
                let img = jpeg_of(&s.get(&format!("/faces/{id}.jpg")));
                assert_eq!(img.dimensions(), (256, 256));
            });
        }
    });

    // A photo and its faces; the photo view at display size.
    let pid = face["photo"].as_str().unwrap();
    let photo = s.get(&format!("/api/photos/{pid}")).json();
    assert_eq!(photo["id"], pid);
    assert_eq!(photo["path"], face["path"]);
    let in_photo: Vec<&Value> = faces.iter().filter(|f| f["photo"] == pid).collect();
    assert_eq!(photo["faces"].as_array().unwrap().len(), in_photo.len());
    let view = jpeg_of(&s.get(&format!("/photos/{pid}.jpg")));
    let (w, h) = (
        photo["width"].as_u64().unwrap(),
        photo["height"].as_u64().unwrap(),
    );
    let long = w.max(h).min(1600);
    assert_eq!(view.width().max(view.height()) as u64, long);
    assert_eq!(view.dimensions(), original(face).dimensions());

    // The page itself and its parts.
    for (path, kind) in [
        ("/", "text/html"),
        ("/page.js", "text/javascript"),
        ("/page.css", "text/css"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("script-src 'self'")
        );
    }
}

/// The face's photo as decoded independently (EXIF orientation applied).
fn original(face: &Value) -> image::RgbImage {
    common::decode_oriented(std::path::Path::new(face["path"].as_str().unwrap())).into_rgb8()
}

/// The square the issue asks for: the face box plus a margin, inside the photo, 256 px.
fn expected_thumbnail(face: &Value) -> image::RgbImage {
    common::face_square(&original(face), face)
}

fn faces_of<'a>(faces: &'a [Value], name: &str) -> Vec<&'a Value> {
    faces.iter().filter(|f| f["person"] == name).collect()
}

fn count_of(lib: &Library, name: &str) -> Option<u64> {
    Library::person(&lib.people(), name).map(|p| p["faces"].as_u64().unwrap())
}

#[test]
fn every_action_changes_what_visage_people_says() {
    let lib = library("serve-actions");
    let s = Api::new(&lib);
    let list = clusters(&s);
    let cid = |k: usize| list[k]["id"].as_str().unwrap().to_string();
    let size = |k: usize| list[k]["faces"].as_i64().unwrap();

    // Name a cluster, taking one face out: it is rejected for that name.
    let out = list[0]["preview"][1]["id"].as_str().unwrap().to_string();
    let a = s.act(
        "/api/name",
        json!({"target": cid(0), "name": "Alice", "except": [out]}),
    );
    assert_eq!(a["person"], "Alice");
    assert_eq!(a["named"].as_i64(), Some(size(0) - 1), "{a}");
    assert_eq!(a["rejected"], 1);
    let faces = lib.faces();
    let alice = faces_of(&faces, "Alice");
    assert_eq!(
        alice.len() as i64,
        a["named"].as_i64().unwrap() + a["joined"].as_i64().unwrap()
    );
    assert_eq!(count_of(&lib, "Alice"), Some(alice.len() as u64));
    assert!(alice.iter().all(|f| f["id"] != out.as_str()));
    let faces_out = faces.iter().find(|f| f["id"] == out.as_str()).unwrap();
    assert_ne!(faces_out["person"], "Alice");

    // Naming a second cluster with an existing name merges it into that person.
    let before = count_of(&lib, "Alice").unwrap() as i64;
    let b = s.act("/api/name", json!({"target": cid(1), "name": " Alice "}));
    assert!(b["named"].as_i64().unwrap() >= size(1), "{b}");
    assert_eq!(
        count_of(&lib, "Alice").unwrap() as i64,
        before + b["named"].as_i64().unwrap() + b["joined"].as_i64().unwrap()
    );

    // Rename, merge, split, reject, ignore, hide, unhide.
    s.act("/api/name", json!({"target": cid(2), "name": "Bob"}));
    s.act("/api/rename", json!({"old": "Bob", "new": "Robert"}));
    assert_eq!(count_of(&lib, "Bob"), None);
    let robert = count_of(&lib, "Robert").unwrap();
    s.act("/api/name", json!({"target": cid(3), "name": "Carol"}));
    let carol = count_of(&lib, "Carol").unwrap();
    let m = s.act("/api/merge", json!({"from": "Carol", "into": "Robert"}));
    assert_eq!(m["moved"].as_u64(), Some(carol));
    assert_eq!(count_of(&lib, "Carol"), None);
    assert_eq!(count_of(&lib, "Robert"), Some(robert + carol));

    let faces = lib.faces();
    let robert_faces = faces_of(&faces, "Robert");
    let moved = robert_faces[0]["id"].as_str().unwrap();
    let sp = s.act("/api/split", json!({"faces": [moved], "to": "Dave"}));
    assert_eq!(sp["moved"], 1);
    let faces = lib.faces();
    let now = faces.iter().find(|f| f["id"] == moved).unwrap();
    assert_eq!(now["person"], "Dave");
    assert_eq!(now["assigned"], "manual");

    let rejected = faces_of(&faces, "Alice")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let alice_before = count_of(&lib, "Alice").unwrap();
    let r = s.act(
        "/api/reject",
        json!({"faces": [rejected], "person": "Alice"}),
    );
    assert_eq!(r["rejected"], 1);
    assert_eq!(count_of(&lib, "Alice"), Some(alice_before - 1));
    let faces = lib.faces();
    assert_ne!(
        faces.iter().find(|f| f["id"] == rejected.as_str()).unwrap()["person"],
        "Alice"
    );

    if list.len() > 4 {
        let now = clusters(&s);
        let c4 = now.iter().find(|c| c["id"] == cid(4).as_str()).unwrap();
        let ig = s.act("/api/ignore", json!({"cluster": cid(4)}));
        assert_eq!(ig["faces"], c4["faces"]);
        let all = lib.visage_json(&["clusters", "--json"]);
        let c = all.iter().find(|c| c["id"] == cid(4).as_str()).unwrap();
        assert_eq!(c["kind"], "ignored");
        assert!(clusters(&s).iter().all(|c| c["id"] != cid(4).as_str()));
    }

    s.act("/api/hide", json!({"name": "Dave"}));
    let shown = lib.visage_json(&["people", "--json"]);
    assert!(Library::person(&shown, "Dave").is_none());
    assert_eq!(
        Library::person(&lib.people(), "Dave").unwrap()["hidden"],
        true
    );
    let listed = s.get("/api/people").json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] != "Dave")
    );
    let hidden = s.get("/api/people?hidden=1").json();
    assert!(
        hidden
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Dave")
    );
    s.act("/api/hide", json!({"name": "Dave", "hidden": false}));
    assert!(Library::person(&lib.visage_json(&["people", "--json"]), "Dave").is_some());

    // The face rejected above is in no cluster now: it is listed as unknown, and naming it
    // makes a person of it.
    let unknown = s.get("/api/faces?unassigned=1&limit=1000").json();
    assert!(ids(&unknown["faces"]).contains(&rejected), "{unknown}");
    let e = s.act("/api/name", json!({"target": rejected, "name": "Erin"}));
    assert_eq!(e["named"], 1);
    assert!(count_of(&lib, "Erin").unwrap() >= 1);
    let faces = lib.faces();
    assert_eq!(
        faces.iter().find(|f| f["id"] == rejected.as_str()).unwrap()["person"],
        "Erin"
    );

    // Each person's cover face is one of their faces; the largest.
    let faces = lib.faces();
    for p in s.get("/api/people?hidden=1").json().as_array().unwrap() {
        let mine = faces_of(&faces, p["name"].as_str().unwrap());
        let cover = mine
            .iter()
            .find(|f| f["id"] == p["face"])
            .unwrap_or_else(|| panic!("{p}"));
        let area = |f: &Value| f["w"].as_f64().unwrap() * f["h"].as_f64().unwrap();
        assert!(mine.iter().all(|f| area(f) <= area(cover)));
        assert_eq!(p["faces"].as_u64(), Some(mine.len() as u64));
    }

    // A person's faces page by page, newest photos first.
    let robert = count_of(&lib, "Robert").unwrap();
    let first = s.get("/api/faces?person=Robert&limit=2").json();
    assert_eq!(first["total"].as_u64(), Some(robert));
    assert_eq!(
        first["faces"].as_array().unwrap().len() as u64,
        robert.min(2)
    );

    // Refusals say what was wrong, with a 4xx, and change nothing.
    let people_before = lib.people();
    for (path, body, status, says) in [
        (
            "/api/name",
            json!({"target": "c999999", "name": "X"}),
            404,
            "c999999",
        ),
        (
            "/api/name",
            json!({"target": cid(0), "name": "  "}),
            400,
            "empty",
        ),
        ("/api/name", json!({"target": "z1", "name": "X"}), 400, "z1"),
        (
            "/api/name",
            json!({"target": "f999999", "name": "X"}),
            404,
            "f999999",
        ),
        (
            "/api/rename",
            json!({"old": "Robert", "new": "Alice"}),
            400,
            "merge",
        ),
        (
            "/api/rename",
            json!({"old": "Nobody", "new": "X"}),
            404,
            "Nobody",
        ),
        (
            "/api/merge",
            json!({"from": "Robert", "into": "robert"}),
            400,
            "same person",
        ),
        ("/api/ignore", json!({"cluster": "f1"}), 400, "cluster"),
        ("/api/split", json!({"faces": [], "to": "X"}), 400, "faces"),
        ("/api/reject", json!({"faces": ["f1", "oops"]}), 400, "oops"),
        ("/api/hide", json!({"name": "Nobody"}), 404, "Nobody"),
    ] {
        let r = s.post(path, &body);
        assert_eq!(r.status, status, "{path} {body}: {}", r.text());
        assert!(r.error().contains(says), "{path} {body}: {}", r.error());
    }
    assert_eq!(lib.people(), people_before);
    let r = s.get("/api/faces?person=Nobody");
    assert_eq!((r.status, r.error().contains("Nobody")), (404, true));
    let r = s.get("/api/faces?cluster=c1&person=Robert");
    assert_eq!(r.status, 400);
    let r = s.get("/api/faces?unassigned=1&limit=lots");
    assert_eq!((r.status, r.error().contains("limit")), (400, true));
    let r = s.get("/api/faces?unassigned=1&limit=100000");
    assert_eq!(r.status, 400);

    let audit = lib.visage_json(&["audit", "--json"]);
    assert!(
        audit
            .iter()
            .all(|f| f["count"] == 0 || f.get("integrity_check").is_some()),
        "{audit:?}"
    );
    assert_eq!(audit.last().unwrap()["integrity_check"], "ok");
}

#[test]
fn token_host_and_origin_are_checked() {
    let lib = library("serve-auth");
    let s = Server::start(&lib, &[]);
    s.act(
        "/api/name",
        json!({"target": clusters(&s)[0]["id"], "name": "Secret Name"}),
    );
    let a = s.addr;

    // No token, or a wrong one: 401 and nothing else.
    for target in [
        "/",
        "/api/people",
        "/faces/f1.jpg",
        "/photos/p1.jpg",
        "/page.js",
        "/nowhere",
    ] {
        let r = request(a, "GET", target, &[], b"");
        assert_eq!(r.status, 401, "{target}");
        assert!(!r.text().contains("Secret"), "{target}");
        r.error();
        let r = request(
            a,
            "GET",
            target,
            &[("X-Visage-Token", "0123456789abcdef0123456789abcdef")],
            b"",
        );
        assert_eq!(r.status, 401, "{target}");
    }
    let r = request(a, "GET", "/api/people?token=wrong", &[], b"");
    assert_eq!(r.status, 401);
    let r = request(
        a,
        "GET",
        "/api/people",
        &[(
            "Cookie",
            format!("visage_token_{}=wrong", a.port()).as_str(),
        )],
        b"",
    );
    assert_eq!(r.status, 401);

    // First visit: the token in the URL becomes an HttpOnly SameSite=Strict cookie and leaves
    // the address bar; the cookie alone is then enough.
    let first = request(a, "GET", &format!("/?token={}", s.token), &[], b"");
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/"));
    let cookie = first.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = request(a, "GET", "/api/people", &[("Cookie", pair.as_str())], b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Secret Name"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    let r = request(
        a,
        "GET",
        &format!("/api/people?token={}", s.token),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = request(
        a,
        "GET",
        "/api/people",
        &[("Authorization", format!("Bearer {}", s.token).as_str())],
        b"",
    );
    assert_eq!(r.status, 200);

    // DNS rebinding: another name for this address is refused even with the token.
    let r = request(
        a,
        "GET",
        "/api/people",
        &[("Host", "evil.example:8177"), ("Cookie", pair.as_str())],
        b"",
    );
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("Secret"));
    let localhost = format!("localhost:{}", a.port());
    let r = request(
        a,
        "GET",
        "/api/people",
        &[("Host", localhost.as_str()), ("Cookie", pair.as_str())],
        b"",
    );
    assert_eq!(r.status, 200);

    // State changes: POST only, from this origin.
    let hide = br#"{"name": "Secret Name"}"#;
    let json = ("Content-Type", "application/json");
    let cookie_h = ("Cookie", pair.as_str());
    let origin = s.origin();
    for (headers, status) in [
        (vec![cookie_h, json, ("Origin", "http://evil.example")], 403),
        (vec![cookie_h, json, ("Origin", "null")], 403),
        (vec![cookie_h, json], 403),
        (
            vec![
                cookie_h,
                json,
                ("Origin", origin.as_str()),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            403,
        ),
        (
            vec![
                cookie_h,
                ("Content-Type", "text/plain"),
                ("Origin", origin.as_str()),
            ],
            415,
        ),
        (
            vec![
                cookie_h,
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", origin.as_str()),
            ],
            415,
        ),
        (vec![json, ("Origin", origin.as_str())], 401),
    ] {
        let r = request(a, "POST", "/api/hide", &headers, hide);
        assert_eq!(r.status, status, "{headers:?}: {}", r.text());
        r.error();
    }
    assert_eq!(
        Library::person(&lib.people(), "Secret Name").unwrap()["hidden"],
        false
    );
    let r = request(
        a,
        "POST",
        "/api/hide",
        &[
            cookie_h,
            json,
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        hide,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        Library::person(&lib.people(), "Secret Name").unwrap()["hidden"],
        true
    );
    let r = s.get("/api/hide");
    assert_eq!(r.status, 405);
    r.error();

    // Bytes that are not HTTP: a 4xx or a closed connection; the server lives on.
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        let answer = server::exchange(a, garbage);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    assert_eq!(s.get("/api/people").status, 200);
    s.stop();

    // A non-loopback address needs --allow-remote; with it, the token is still required.
    let out = common::visage(
        &[
            "serve",
            "--bind",
            "0.0.0.0:0",
            "--db",
            lib.db.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
    let remote = Server::start_remote(&lib);
    let r = request(remote.addr, "GET", "/api/people", &[], b"");
    assert_eq!(r.status, 401);
    let r = request(
        remote.addr,
        "GET",
        "/api/people",
        &[("X-Visage-Token", remote.token.as_str())],
        b"",
    );
    assert_eq!(r.status, 200);
    remote.stop();
}

#[test]
fn traversal_bad_requests_and_names_are_harmless() {
    let lib = library("serve-bad");
    let s = Api::new(&lib);
    let token = [("X-Visage-Token", s.token())];

    // Files only by id: no request path reaches the file system.
    for target in [
        "/photos/../../etc/passwd",
        "/photos/..%2F..%2Fetc%2Fpasswd",
        "/photos/%2e%2e/%2e%2e/etc/passwd",
        "/faces/../../../../etc/passwd",
        "/faces/f1.jpg/../../etc/passwd",
        "/photos//etc/passwd",
        "/photos/p0.jpg",
        "/photos/p-1.jpg",
        "/photos/p99999999.jpg",
        "/faces/x.jpg",
        "/faces/f1.png",
        "/api/photos/p0",
        "/api/photos/..",
        "/etc/passwd",
        "/page.js/../../etc/passwd",
    ] {
        let r = s.request("GET", target, &token, b"");
        assert_eq!(r.status, 404, "{target}: {}", r.text());
        assert!(!r.text().contains("root:"), "{target}");
        r.error();
    }

    // Malformed requests: a 4xx with a message; the server lives on.
    let json = ("Content-Type", "application/json");
    for body in [
        &b"{\"target\": "[..],
        b"not json",
        b"[]",
        b"{\"target\": 5, \"name\": \"X\"}",
        b"{\"target\": \"c1\", \"name\": \"X\", \"extra\": 1}",
        b"{\"name\": \"X\"}",
        b"",
        b"\xff\xfe",
    ] {
        let r = s.request("POST", "/api/name", &[token[0], json], body);
        assert_eq!(
            r.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
        assert!(r.error().contains("JSON"), "{}", r.error());
    }
    let huge = vec![b' '; 2 << 20];
    let r = s.request("POST", "/api/name", &[token[0], json], &huge);
    assert_eq!(r.status, 413, "{}", r.text());
    let long = "x".repeat(201);
    let r = s.post("/api/name", &json!({"target": "c1", "name": long}));
    assert_eq!(r.status, 400);
    assert_eq!(s.get("/api/people").status, 200);

    // A name that is markup stays data: the API gives it back as it was typed, and the page
    // never turns data into markup (it builds every element with textContent).
    let evil = "<img src=x onerror=alert(1)>";
    let cid = clusters(&s)[0]["id"].clone();
    s.act("/api/name", json!({"target": cid, "name": evil}));
    let people = s.get("/api/people").json();
    assert_eq!(people[0]["name"], evil);
    assert!(Library::person(&lib.people(), evil).is_some());
    let js = s.get("/page.js").text();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(sink), "page.js uses {sink}");
    }
    assert!(!s.get("/").text().contains(evil));
}

#[test]
fn a_gone_photo_gives_a_placeholder() {
    let lib = library("serve-gone");
    let s = Api::new(&lib);
    let faces = lib.faces();
    let face = &faces[0];
    let (fid, pid) = (
        face["id"].as_str().unwrap(),
        face["photo"].as_str().unwrap(),
    );
    std::fs::remove_file(face["path"].as_str().unwrap()).unwrap();

    // Not indexed since: the file is missing; a placeholder, never an error.
    for target in [format!("/faces/{fid}.jpg"), format!("/photos/{pid}.jpg")] {
        let r = s.get(&target);
        let img = jpeg_of(&r);
        assert_eq!(img.dimensions(), (256, 256), "{target}");
        assert_eq!(r.header("x-visage-placeholder"), Some("1"), "{target}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // An unreadable file is the same.
    let other = faces.iter().find(|f| f["photo"] != pid).unwrap();
    std::fs::write(other["path"].as_str().unwrap(), b"not a photo any more").unwrap();
    let r = s.get(&format!("/faces/{}.jpg", other["id"].as_str().unwrap()));
    assert_eq!(r.header("x-visage-placeholder"), Some("1"));
    jpeg_of(&r);

    // After `visage index` the photo is gone: its faces leave the lists; it still answers.
    let out = common::visage(
        &[
            "index",
            "--db",
            lib.db.to_str().unwrap(),
            lib.photos.to_str().unwrap(),
        ],
        server::ENV,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let photo = s.get(&format!("/api/photos/{pid}")).json();
    assert_eq!(photo["gone"], true);
    let r = s.get(&format!("/faces/{fid}.jpg"));
    assert_eq!(r.header("x-visage-placeholder"), Some("1"));
    let all: usize = clusters(&s)
        .iter()
        .map(|c| c["faces"].as_u64().unwrap() as usize)
        .sum();
    assert!(all > 0);
    for c in clusters(&s) {
        let page = s
            .get(&format!(
                "/api/faces?cluster={}&limit=1000",
                c["id"].as_str().unwrap()
            ))
            .json();
        assert!(ids(&page["faces"]).iter().all(|f| f != fid));
    }
}

#[test]
fn index_may_run_while_the_page_is_open() {
    let lib = library("serve-index");
    let s = Api::new(&lib);
    let before = lib.faces().len();
    std::fs::copy(
        common::testdata().join("group/t1.jpg"),
        lib.photos.join("group.jpg"),
    )
    .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (served, acted) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for target in ["/api/clusters", "/api/people", "/api/faces?unassigned=1"] {
                    let r = s.get(target);
                    assert_eq!(r.status, 200, "{target} during index: {}", r.text());
                    n += 1;
                }
            }
            n
        });
        let writer = scope.spawn(|| {
            let cid = clusters(&s)[0]["id"].clone();
            s.act("/api/name", json!({"target": cid, "name": "During Index"}))
        });
        let out = common::visage(
            &[
                "index",
                "--json",
                "--db",
                lib.db.to_str().unwrap(),
                lib.photos.to_str().unwrap(),
            ],
            server::ENV,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let acted = writer.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (reader.join().unwrap(), acted)
    });
    assert!(served > 0);
    // Both writes are there: the new photo's faces and the name given through the page.
    let after = lib.faces();
    assert!(after.len() >= before + 5, "{} -> {}", before, after.len());
    assert!(
        after
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("group.jpg"))
    );
    assert!(count_of(&lib, "During Index").unwrap() >= acted["named"].as_u64().unwrap());
    // The page shows the new faces without a restart.
    let group = after
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("group.jpg"))
        .unwrap();
    let photo = s
        .get(&format!("/api/photos/{}", group["photo"].as_str().unwrap()))
        .json();
    assert!(photo["faces"].as_array().unwrap().len() >= 5);
    jpeg_of(&s.get(&format!("/faces/{}.jpg", group["id"].as_str().unwrap())));
    let audit = lib.visage_json(&["audit", "--json"]);
    assert_eq!(audit.last().unwrap()["integrity_check"], "ok");
}

/// Not a test of behaviour: BENCHMARKS.md's cost of thumbnails from a 12-megapixel photo (the
/// group photo upscaled to 4256 x 2946 and indexed), cold and from the cache, over HTTP.
#[test]
#[ignore = "a benchmark: run by scripts/bench-serve"]
fn large_photo_thumbnail_timings() {
    let dir = common::tempdir("bench-large");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let t1 = image::open(common::testdata().join("group/t1.jpg")).unwrap();
    let big = t1.resize_exact(4256, 2946, image::imageops::FilterType::Triangle);
    big.to_rgb8().save(photos.join("big.jpg")).unwrap();
    let lib = Library {
        db: dir.join("visage.db"),
        cache: dir.join("cache"),
        photos,
        dir,
    };
    lib.visage_json(&["index", "--json", lib.photos.to_str().unwrap()]);
    let faces = lib.faces();
    let s = Server::start(&lib, &[]);
    let time = |target: &str| {
        let started = std::time::Instant::now();
        let r = s.get(target);
        assert_eq!(r.status, 200);
        assert!(r.header("x-visage-placeholder").is_none());
        started.elapsed().as_secs_f64() * 1000.0
    };
    let first = time(&format!("/faces/{}.jpg", faces[0]["id"].as_str().unwrap()));
    let rest: Vec<f64> = faces[1..]
        .iter()
        .map(|f| time(&format!("/faces/{}.jpg", f["id"].as_str().unwrap())))
        .collect();
    let cached = time(&format!("/faces/{}.jpg", faces[0]["id"].as_str().unwrap()));
    let pid = faces[0]["photo"].as_str().unwrap();
    let view_cold = time(&format!("/photos/{pid}.jpg"));
    let view_cached = time(&format!("/photos/{pid}.jpg"));
    println!(
        "{}",
        json!({ "photo": "4256x2946", "faces": faces.len(), "first_thumbnail_ms": first,
                "other_thumbnails_ms": rest, "cached_thumbnail_ms": cached,
                "photo_view_cold_ms": view_cold, "photo_view_cached_ms": view_cached })
    );
    s.stop();
}

/// The faces in no cluster that look like a page of clusters (`/api/also`): each offered with
/// one cluster only, named with it, and no longer offered once the library changed.
#[test]
fn faces_offered_with_a_page_of_clusters_are_named_with_it() {
    let lib = library("serve-also");
    let s = Api::new(&lib);
    let list = clusters(&s);
    let page: Vec<String> = list
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let url = format!("/api/also?clusters={}", page.join(","));
    let r = s.get(&url);
    assert_eq!(r.status, 200, "{}", r.text());
    let also = r.json()["also"].as_object().unwrap().clone();
    let mut offered: Vec<String> = Vec::new();
    for (c, rows) in &also {
        assert!(page.contains(c), "{c} is not on the page");
        for f in rows.as_array().unwrap() {
            assert!(f["cluster"].is_null() && f["person"].is_null(), "{f}");
            offered.push(f["id"].as_str().unwrap().to_string());
        }
    }
    let n = offered.len();
    offered.sort();
    offered.dedup();
    assert_eq!(offered.len(), n, "a face offered with two clusters");
    assert!(
        n > 0,
        "the celebrity set's clusters offer no face: {also:?}"
    );
    // Asked again: the same answer (kept).
    assert_eq!(s.get(&url).json()["also"], Value::Object(also.clone()));

    // Naming the cluster that offers most names its faces and those offered with it.
    let (cid, rows) = also
        .iter()
        .max_by_key(|(_, rows)| rows.as_array().unwrap().len())
        .unwrap();
    let with: Vec<String> = ids(rows);
    let size = list.iter().find(|c| c["id"] == cid.as_str()).unwrap()["faces"]
        .as_i64()
        .unwrap();
    let a = s.act(
        "/api/name",
        json!({"target": cid, "name": "Offered", "also": with}),
    );
    assert_eq!(a["named"].as_i64(), Some(size + with.len() as i64), "{a}");
    let faces = lib.faces();
    for f in &with {
        let row = faces.iter().find(|x| x["id"] == f.as_str()).unwrap();
        assert_eq!(row["person"], "Offered", "{row}");
    }
    // The change drops the kept answer: the named cluster is offered nothing any more.
    let after = s.get(&url).json();
    assert!(after["also"].get(cid.as_str()).is_none(), "{after}");

    // Asked wrongly: a 400 that says why.
    for bad in [
        "/api/also",
        "/api/also?clusters=f1",
        "/api/also?clusters=c1;c2",
    ] {
        let r = s.get(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}
