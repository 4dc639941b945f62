//! Writes `extract`'s text of every page in DIR/eval to OUT/<file>.txt, and
//! its title (when there is one) to OUT/<file>.title.
//!
//! `cargo run --release -p refinery-extract --example dump -- DIR OUT`

use refinery_extract::{extract, ExtractOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = &args[..] else {
        eprintln!("usage: dump DIR OUT");
        std::process::exit(2);
    };
    let opts: ExtractOptions = std::env::var("EXTRACT_OPTS")
        .ok()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    let mut root = std::path::PathBuf::from(dir);
    if !root.join("eval").exists() {
        root = root.join("tests");
    }
    std::fs::create_dir_all(out).expect("create OUT");
    let mut files: Vec<_> = std::fs::read_dir(root.join("eval"))
        .expect("read eval dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for path in files {
        let raw = std::fs::read(&path).unwrap_or_default();
        let page = extract(&String::from_utf8_lossy(&raw), &opts);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let out = std::path::Path::new(out);
        std::fs::write(out.join(format!("{name}.txt")), page.text).expect("write");
        if let Some(title) = page.title {
            std::fs::write(out.join(format!("{name}.title")), title).expect("write");
        }
    }
}
