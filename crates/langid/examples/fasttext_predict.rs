//! Predicts the labels of each stdin line with a fastText model, printing
//! `label prob` pairs like `fasttext predict-prob MODEL - K`.
//!
//! ```text
//! cargo run --release -p refinery-langid --example fasttext_predict -- MODEL [K] < lines.txt
//! ```

use std::io::{BufRead, Write};

use refinery_langid::FastText;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: fasttext_predict MODEL [K]")?;
    let k: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let model = FastText::load(&path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let preds = model.predict(&line, k, 0.0);
        let fields: Vec<String> = preds.iter().map(|(l, p)| format!("{l} {p}")).collect();
        writeln!(out, "{}", fields.join(" "))?;
    }
    Ok(())
}
