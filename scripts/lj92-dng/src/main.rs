//! `lj92-dng IN.dng OUT.dng`: IN rewritten by rawler's converter (dnglab's engine) with its raw
//! image lossless-JPEG (LJ92) compressed in IFD0, with its default crop and active area, and
//! without previews (add one with `scripts/dng.py`'s `add_preview`).

use std::path::Path;

use rawler::dng::convert::{ConvertParams, convert_raw_file};
use rawler::dng::{CropMode, DngCompression};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = &args[..] else {
        eprintln!("usage: lj92-dng IN.dng OUT.dng");
        std::process::exit(2);
    };
    let params = ConvertParams {
        embedded: false,
        compression: DngCompression::Lossless,
        crop: CropMode::Best,
        preview: false,
        thumbnail: false,
        ..Default::default()
    };
    let tmp = format!("{output}.part");
    let result = std::fs::File::create(&tmp)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            convert_raw_file(Path::new(input), &mut out, &params).map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&tmp, output).map_err(|e| e.to_string()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("lj92-dng: {input}: {e}");
        std::process::exit(1);
    }
}
