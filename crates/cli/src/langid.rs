//! `refinery langid`: the language of each line on stdin.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use refinery_langid::{detect, FastText, DEFAULT_MAX_CHARS, UNKNOWN};

#[derive(Args)]
#[command(after_help = "\
Output: one line per input line, `label<TAB>score` (with --k N, up to N
`label<TAB>score` pairs, best first, all tab-separated). Labels have no
`__label__` prefix. The built-in model (whatlang, 70 languages) gives only
its top label, with its confidence; it prints `unknown\t0` when it detects
nothing. With a fastText model the scores are probabilities, exactly as
`fasttext predict-prob MODEL - K` computes them (up to printing).

Examples:
  echo 'Das ist ein Satz.' | refinery langid
  refinery langid --model lid.176.ftz < lines.txt
  refinery langid --model lid.176.ftz --k 3 < lines.txt | cut -f1 | sort | uniq -c")]
pub struct LangidArgs {
    /// A fastText model (.bin or .ftz, e.g. lid.176.ftz); default: the
    /// built-in whatlang model.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Labels to print per line (fastText models only), best first.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
}

pub fn langid(args: LangidArgs) -> Result<ExitCode> {
    let model = match &args.model {
        Some(path) => Some(FastText::load(path)?),
        None => None,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let mut input = stdin.lock();
    let mut n = 0u64;
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading stdin")?
            == 0
        {
            break;
        }
        n += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        out.write_all(result_line(model.as_ref(), &text, args.k as usize).as_bytes())?;
        out.write_all(b"\n")
            .with_context(|| format!("writing the result of line {n}"))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The output for one line of text, without the newline.
fn result_line(model: Option<&FastText>, text: &str, k: usize) -> String {
    let mut s = String::new();
    match model {
        Some(m) => {
            let preds = m.predict(text, k, 0.0);
            if preds.is_empty() {
                s.push_str(UNKNOWN);
                s.push_str("\t0");
            }
            for (i, (label, p)) in preds.iter().enumerate() {
                let sep = if i == 0 { "" } else { "\t" };
                let _ = write!(s, "{sep}{label}\t{p}");
            }
        }
        None => {
            let (label, score) = detect(text, DEFAULT_MAX_CHARS).unwrap_or((UNKNOWN, 0.0));
            let _ = write!(s, "{label}\t{}", score as f32);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_model_prints_label_and_score() {
        let line = result_line(
            None,
            "Die Stadtverwaltung hat beschlossen, die alte Brücke zu erneuern.",
            3,
        );
        let (label, score) = line.split_once('\t').unwrap();
        assert_eq!(label, "de");
        assert!(
            (0.0..=1.0).contains(&score.parse::<f32>().unwrap()),
            "{line}"
        );
        assert_eq!(result_line(None, "12345 !!!", 1), "unknown\t0");
    }

    #[test]
    fn fasttext_model_prints_k_pairs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../langid/tests/fixtures/tiny-hs.ftz");
        let model = FastText::load(path).unwrap();
        let text = "жа ко ри сту";
        let want = model.predict(text, 3, 0.0);
        let line = result_line(Some(&model), text, 3);
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 2 * want.len(), "{line}");
        for (pair, (label, p)) in fields.chunks(2).zip(&want) {
            assert_eq!(pair[0], *label);
            assert_eq!(pair[1].parse::<f32>().unwrap(), *p);
        }
        let top = result_line(Some(&model), text, 1);
        assert_eq!(top.split('\t').count(), 2, "{top}");
    }
}
