//! Reading a camera-size JPEG for detection (`Reader::open`: the DCT-scaled decode, the
//! downscale to 1280 px and the luminance) and a finer part of it (as a small face's is read),
//! by the system's libjpeg-turbo (with SIMD) and by the built-in libjpeg, on the test photos of
//! 12 MP and 48 MP.
//!
//! `cargo bench --profile dev --bench decode`; photos come from `scripts/fetch-testdata`, the
//! system's libjpeg-turbo from Debian's `libjpeg62-turbo`.

mod kit;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kit::testdata;
use visage::geometry::Rect;
use visage::models::Models;
use visage::photo::heif::Origin;
use visage::photo::{Libjpeg, Reader};

fn bench(c: &mut Criterion) {
    let system = Libjpeg::system().unwrap_or_else(|e| panic!("no system libjpeg-turbo: {e}"));
    let readers = [
        (
            "system",
            Reader::with_libheif(Models::new(None), Origin::Any).with_libjpeg(system),
        ),
        (
            "built_in",
            Reader::with_libheif(Models::new(None), Origin::Any).with_libjpeg(Libjpeg::built_in()),
        ),
    ];
    // A face's part of the detection image, read at 3x (as a 50 px face is for FaceNet's 160).
    let part = Rect {
        x: 500.0,
        y: 300.0,
        w: 120.0,
        h: 150.0,
    };
    let mut group = c.benchmark_group("decode");
    group.measurement_time(Duration::from_secs(5));
    for photo in ["group-12mp", "group-48mp"] {
        let path = testdata().join(format!("large/{photo}.jpg"));
        for (name, reader) in &readers {
            group.bench_function(format!("{photo}/for_detection/{name}"), |b| {
                b.iter(|| reader.open(&path).unwrap())
            });
            let opened = reader.open(&path).unwrap();
            group.bench_function(format!("{photo}/finer_part/{name}"), |b| {
                b.iter(|| opened.detail(part, 3.0).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
