//! The review page in a real browser: the system's headless Chromium, driven over the DevTools
//! protocol (`tests/cdp`), against a real `visage serve` on the real indexed 5-celebrity library.
//! Open the printed URL, see thumbnails that loaded, take a face out of a cluster, name it with
//! the keyboard, and find the name in `visage people --json`; names with markup show as text;
//! select faces on a person's page (click, shift-click) and say they are not that person; open a
//! photo with its boxes. Screenshots of the review and person pages go to `$VISAGE_SCREENSHOTS`
//! (`scripts/screenshots` sets it to `docs/`).
//!
//! A missing Chromium fails the test, naming the package (`chromium`).

use crate::common;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cdp::Browser;
use crate::common::tools::chromium;
use crate::server::{Client, Library, Server, library};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// Every face image in `scope` has loaded, at thumbnail size.
fn thumbnails_loaded(scope: &str) -> String {
    format!(
        "(() => {{ const imgs = [...document.querySelectorAll({scope:?})]; \
         return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth >= 192); }})()"
    )
}

fn save_screenshot(png: &[u8], name: &str, fallback: &Path) -> PathBuf {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap();
    assert_eq!((img.width(), img.height()), (1280, 900));
    let dir = std::env::var_os("VISAGE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| fallback.to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

/// `.../celebrity/train/jerry_seinfeld/x.jpg` → "Jerry Seinfeld".
fn person_of(face: &Value) -> String {
    let path = Path::new(face["path"].as_str().unwrap());
    let folder = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    folder
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn person_faces(lib: &Library, name: &str) -> u64 {
    Library::person(&lib.people(), name).map_or(0, |p| p["faces"].as_u64().unwrap())
}

#[test]
fn name_people_in_the_browser() {
    let chromium = chromium();
    let lib = library("browser");
    let s = Server::start(&lib, &[]);
    let clusters = s.get("/api/clusters").json()["clusters"]
        .as_array()
        .unwrap()
        .clone();
    assert!(clusters.len() >= 3, "{clusters:?}");
    // The smallest cluster gets a name that is markup: it must show as text.
    let evil = "<img src=x onerror=window.__pwned=1>";
    let last = clusters.last().unwrap();
    s.act("/api/name", json!({"target": last["id"], "name": evil}));

    let mut browser = Browser::start(&chromium, &lib.dir.join("chromium"));
    let mut page = browser.new_page(1280, 900);
    page.navigate(&s.url);
    page.wait_for(
        "the review page's thumbnails",
        &thumbnails_loaded(".cluster img.face"),
        WAIT,
    );
    // The token went into a cookie and out of the address bar.
    assert_eq!(page.eval("location.search"), json!(""));
    assert_eq!(
        page.eval("document.cookie"),
        json!(""),
        "the cookie is HttpOnly"
    );
    let rows = page.eval("document.querySelectorAll('.cluster').length");
    assert_eq!(rows.as_u64(), Some(clusters.len() as u64 - 1));

    // Take the second face out of the first cluster, then name it with the keyboard alone (the
    // name its photos' folder gives).
    let first = &clusters[0];
    let cid = first["id"].as_str().unwrap();
    let who = person_of(&first["preview"][0]);
    assert_eq!(
        page.eval("document.querySelector('.cluster').dataset.cluster"),
        json!(cid)
    );
    let out = page.eval(
        "(() => { const t = document.querySelector('.cluster').querySelectorAll('.tile')[1]; \
         t.click(); return t.querySelector('img').dataset.face; })()",
    );
    assert_eq!(
        page.eval("document.querySelectorAll('.cluster .tile.out').length"),
        json!(1)
    );
    save_screenshot(&page.screenshot(), "review.png", &lib.dir);
    page.eval("document.querySelector('.cluster').focus()");
    page.press("j");
    page.press("k");
    page.press("n");
    assert_eq!(
        page.eval("document.activeElement.classList.contains('name') && document.activeElement.closest('.cluster').dataset.cluster"),
        json!(cid)
    );
    page.type_text(&who);
    page.press("Enter");
    page.wait_for(
        "the first cluster to be named",
        &format!(
            "(() => {{ const r = document.querySelector('.cluster.done'); \
             return !!r && r.textContent.includes({who:?}); }})()"
        ),
        WAIT,
    );
    let said = page.eval("document.querySelector('.cluster.done').textContent");
    let named = first["faces"].as_u64().unwrap() - 1;
    assert!(
        said.as_str()
            .unwrap()
            .contains(&format!("Named {named} faces")),
        "{said}"
    );
    let ada = person_faces(&lib, &who);
    assert!(ada >= named, "{ada} faces");
    let faces = lib.faces();
    let taken_out = faces.iter().find(|f| f["id"] == out).unwrap();
    assert_ne!(taken_out["person"], who.as_str());
    // The next cluster has the focus, ready for the next name.
    assert_eq!(
        page.eval("document.activeElement.classList.contains('cluster') && !document.activeElement.classList.contains('done')"),
        json!(true)
    );
    // "i" ignores it, from the keyboard too.
    let next = page.eval("document.activeElement.dataset.cluster");
    page.press("i");
    page.wait_for(
        "the next cluster to be ignored",
        "document.querySelectorAll('.cluster.done').length === 2",
        WAIT,
    );
    let all = lib.visage_json(&["clusters", "--json"]);
    let ignored = all.iter().find(|c| c["id"] == next).unwrap();
    assert_eq!(ignored["kind"], "ignored", "{ignored}");

    // People: names as text, never markup.
    page.eval("location.hash = '#/people'");
    page.wait_for(
        "the people page",
        &thumbnails_loaded(".person img.face"),
        WAIT,
    );
    let names =
        page.eval("[...document.querySelectorAll('.person .name')].map(e => e.textContent)");
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&who.as_str()) && names.contains(&evil),
        "{names:?}"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('img[src=\"x\"]').length"),
        json!(0)
    );
    assert_eq!(page.eval("window.__pwned === undefined"), json!(true));

    // A person: faces newest first; select three (click, shift-click) and say "not this person".
    page.eval(&format!(
        "location.hash = '#/person/' + encodeURIComponent({who:?})"
    ));
    page.wait_for(
        "the person's faces",
        &thumbnails_loaded(".grid .tile img.face"),
        WAIT,
    );
    let tiles = page
        .eval("document.querySelectorAll('.grid .tile').length")
        .as_u64()
        .unwrap();
    assert_eq!(tiles, ada);
    page.eval(
        "(() => { const t = document.querySelectorAll('.grid .tile'); t[0].querySelector('.check').click(); \
         t[2].querySelector('.check').dispatchEvent(new MouseEvent('click', { bubbles: true, shiftKey: true })); })()",
    );
    assert_eq!(
        page.eval("document.querySelectorAll('.grid .tile.selected').length"),
        json!(3)
    );
    save_screenshot(&page.screenshot(), "person.png", &lib.dir);
    page.eval("document.querySelector('button.reject').click()");
    page.wait_for(
        "three faces to leave",
        &format!(
            "document.querySelectorAll('.grid .tile').length === {}",
            tiles - 3
        ),
        WAIT,
    );
    assert_eq!(person_faces(&lib, &who), ada - 3);

    // The three are unknown faces now: name one of them there, with its own name box.
    page.eval("location.hash = '#/unknown'");
    page.wait_for(
        "the unknown faces",
        &thumbnails_loaded(".unknown .card img.face"),
        WAIT,
    );
    // Each face is shown square and inside its card (a 256 px thumbnail must not spill over).
    assert_eq!(
        page.eval(
            "[...document.querySelectorAll('.unknown .card img.face')].every(i => \
             i.clientWidth > 0 && Math.abs(i.clientWidth - i.clientHeight) <= 1 && \
             i.getBoundingClientRect().right <= i.parentElement.getBoundingClientRect().right + 0.5)"
        ),
        json!(true)
    );
    let unknown = page.eval("document.querySelector('.unknown .card').dataset.face");
    page.eval("document.querySelector('.unknown .card input').focus()");
    page.type_text("Somebody Else");
    page.press("Enter");
    page.wait_for(
        "the unknown face to be named",
        "(() => { const c = document.querySelector('.unknown .card.done'); \
         return !!c && c.textContent.includes('Somebody Else'); })()",
        WAIT,
    );
    let faces = lib.faces();
    let named = faces.iter().find(|f| f["id"] == unknown).unwrap();
    assert_eq!(named["person"], "Somebody Else");

    // A face opens its photo with every box drawn and named.
    page.eval(&format!(
        "location.hash = '#/person/' + encodeURIComponent({who:?})"
    ));
    page.wait_for(
        "the person's faces again",
        &thumbnails_loaded(".grid .tile img.face"),
        WAIT,
    );
    page.eval("document.querySelector('.grid .tile img').click()");
    page.wait_for(
        "the photo",
        "!document.getElementById('viewer').hidden && document.getElementById('viewer-img').complete \
         && document.getElementById('viewer-img').naturalWidth > 0 && document.querySelectorAll('#viewer .box').length > 0",
        WAIT,
    );
    let labels =
        page.eval("[...document.querySelectorAll('#viewer .box span')].map(e => e.textContent)");
    assert!(
        labels.as_array().unwrap().iter().any(|l| l == who.as_str()),
        "{labels}"
    );
    page.press("Escape");
    assert_eq!(
        page.eval("document.getElementById('viewer').hidden"),
        json!(true)
    );
    drop(browser);
    s.stop();
}

/// "Is this also NAME?": after one face is named, the review page offers the faces like it; one is
/// taken out with a click, the group is accepted with another, and Undo (the `u` key) puts every
/// face back as it was.
#[test]
fn accept_a_suggested_group_then_undo() {
    let chromium = chromium();
    let lib = library("browser-suggest");
    let s = Server::start(&lib, &[]);
    let before = lib.faces();
    let first = &before[0];
    let who = person_of(first);
    s.act("/api/name", json!({"target": first["id"], "name": who}));
    let named = lib.faces();

    let mut browser = Browser::start(&chromium, &lib.dir.join("chromium"));
    let mut page = browser.new_page(1280, 900);
    page.navigate(&s.url);
    page.wait_for(
        "the suggested faces",
        &thumbnails_loaded(".suggestion img.face"),
        WAIT,
    );
    assert_eq!(
        page.eval("document.querySelector('.suggestion').dataset.person"),
        json!(who)
    );
    assert!(
        page.eval("document.querySelector('.suggestion h2').textContent")
            .as_str()
            .unwrap()
            .contains(&format!("Is this also {who}?"))
    );
    let offered = page
        .eval("document.querySelectorAll('.suggestion')[0].querySelectorAll('.tile').length")
        .as_u64()
        .unwrap();
    assert!(offered >= 2, "{offered} faces offered");
    let out = page.eval(
        "(() => { const t = document.querySelector('.suggestion').querySelectorAll('.tile')[1]; \
         t.click(); return t.dataset.face; })()",
    );
    assert_eq!(
        page.eval("document.querySelectorAll('.suggestion .tile.out').length"),
        json!(1)
    );
    let kept = page.eval(
        "[...document.querySelector('.suggestion').querySelectorAll('.tile:not(.out)')].map(t => t.dataset.face)",
    );
    page.eval("document.querySelector('.suggestion button.accept').click()");
    page.wait_for(
        "the group to be accepted",
        "document.getElementById('status').textContent.startsWith('Accepted')",
        WAIT,
    );
    let said = page.eval("document.getElementById('status').textContent");
    assert!(
        said.as_str()
            .unwrap()
            .contains(&format!("Accepted {} face", offered - 1))
            && said.as_str().unwrap().contains("1 taken out"),
        "{said}"
    );
    let faces = lib.faces();
    let face = |id: &Value| faces.iter().find(|f| f["id"] == *id).unwrap().clone();
    for id in kept.as_array().unwrap() {
        let f = face(id);
        assert_eq!(f["person"], who.as_str(), "{f}");
        assert_eq!(f["assigned"], "manual", "{f}");
    }
    assert_ne!(face(&out)["person"], who.as_str());
    let history = lib.visage_json(&["history", "--json"]);
    assert_eq!(history[0]["kind"], "accept", "{history:?}");
    // The progress line counts the named faces.
    page.wait_for(
        "the progress line",
        "document.getElementById('progress').textContent.includes('left')",
        WAIT,
    );

    // Undo with the keyboard: every face is as it was before the group was accepted.
    page.eval(
        "document.activeElement && document.activeElement.blur && document.activeElement.blur()",
    );
    page.press("u");
    page.wait_for(
        "the undo",
        "document.getElementById('status').textContent.startsWith('Undid accept')",
        WAIT,
    );
    let after = lib.faces();
    assert_eq!(after, named, "undo did not put every face back");
    let history = lib.visage_json(&["history", "--json"]);
    assert!(history[0]["undone"].is_number(), "{history:?}");
    drop(browser);
    s.stop();
}

/// Not a test of behaviour: the timings BENCHMARKS.md reports, on a library given by
/// `VISAGE_BENCH_DB` (see `scripts/bench-serve`). Time to first byte and to a fully loaded
/// review page with a cold thumbnail cache, then warm (a fresh browser each time, so only the
/// server's cache is warm), and one naming action with its re-matching.
#[test]
#[ignore = "a benchmark: run by scripts/bench-serve"]
fn review_page_timings() {
    let Some(db) = std::env::var_os("VISAGE_BENCH_DB").map(PathBuf::from) else {
        panic!("set VISAGE_BENCH_DB to the library to measure");
    };
    let chromium = chromium();
    let dir = common::tempdir("bench-serve");
    let lib = Library {
        photos: dir.join("photos"),
        db,
        cache: dir.join("cache"),
        dir: dir.clone(),
    };
    let s = Server::start(&lib, &[]);
    let faces = s.get("/api/faces?unassigned=1&limit=0").json()["total"].clone();
    let total: Value = s.get("/api/clusters?limit=0").json()["total"].clone();
    eprintln!("library: {total} clusters to review, {faces} unassigned faces");
    for round in ["cold", "warm", "warm"] {
        let mut browser = Browser::start(&chromium, &dir.join(format!("chromium-{round}")));
        let mut page = browser.new_page(1280, 900);
        let started = Instant::now();
        page.navigate(&s.url);
        page.wait_for(
            "thumbnails",
            &thumbnails_loaded(".cluster img.face"),
            Duration::from_secs(600),
        );
        let loaded = started.elapsed().as_secs_f64();
        let t = page.eval(
            "(() => { const n = performance.getEntriesByType('navigation')[0]; \
             return { ttfb_ms: n.responseStart - n.requestStart, images: document.querySelectorAll('.cluster img.face').length }; })()",
        );
        println!(
            "{}",
            json!({ "round": round, "ttfb_ms": t["ttfb_ms"], "loaded_s": loaded, "thumbnails": t["images"] })
        );
    }
    let cluster = s.get("/api/clusters?limit=1").json()["clusters"][0].clone();
    let started = Instant::now();
    let answer = s.act(
        "/api/name",
        json!({"target": cluster["id"], "name": "Bench Person"}),
    );
    println!(
        "{}",
        json!({ "action": "name", "cluster_faces": cluster["faces"], "answer": answer, "seconds": started.elapsed().as_secs_f64() })
    );

    // The person page of that person: the first screen, then scrolling through every face.
    let mut browser = Browser::start(&chromium, &dir.join("chromium-person"));
    let mut page = browser.new_page(1280, 900);
    page.navigate(&s.url);
    page.wait_for(
        "the review page",
        "document.querySelector('.cluster') !== null",
        WAIT,
    );
    let started = Instant::now();
    page.eval("location.hash = '#/person/' + encodeURIComponent('Bench Person')");
    page.wait_for(
        "the first screen of faces",
        "(() => { const imgs = [...document.querySelectorAll('.grid img.face')] \
         .filter(i => i.getBoundingClientRect().top < innerHeight); \
         return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); })()",
        Duration::from_secs(120),
    );
    let first_screen = started.elapsed().as_secs_f64();
    let total = answer["faces"].as_u64().unwrap();
    let started = Instant::now();
    page.wait_for(
        "every face on the page",
        &format!(
            "(() => {{ window.scrollTo(0, document.body.scrollHeight); \
             return document.querySelectorAll('.grid .tile').length >= {total}; }})()"
        ),
        Duration::from_secs(300),
    );
    let all = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "page": "person", "faces": total, "first_screen_s": first_screen, "scrolled_to_the_end_s": all })
    );
    drop(browser);
    drop(s);
}
