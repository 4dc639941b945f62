//! `ablation.json`, the result of `refinery ablate` (crate refinery-ablate), and its section
//! of the report: the table (variant | documents kept | tokens kept | epochs | bits/byte per
//! eval set, mean ± std over seeds | difference from base | significant?) and one plot per
//! eval set of bits/byte per variant with ± std error bars.
//!
//! The file is defined here, where it is read, so that the report does not depend on the
//! training stack; refinery-ablate writes it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::svg::{esc, num, PALETTE};
use crate::ReportError;

/// The result file in an ablation's output directory.
pub const ABLATION_FILE: &str = "ablation.json";

/// The significance rule, stated in every result file and report.
pub const SIGNIFICANCE_RULE: &str = "significant = |mean_v - mean_base| > 2 * sqrt(s_v^2/n_v + s_base^2/n_base), s = sample std over seeds (n - 1), n = seeds";

/// `ablation.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    /// The experiment file it ran.
    pub experiment: String,
    pub description: String,
    /// The model preset (e.g. `gpt-tiny`) and its parameter count.
    pub model: String,
    pub parameters: u64,
    /// Tokens every run trained on: `steps * batch_size * seq_len` (the budget rounded up to
    /// whole steps).
    pub tokens_per_run: u64,
    /// The budget as written.
    pub budget_tokens: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub seq_len: usize,
    pub seeds: Vec<u64>,
    /// Vocabulary of the one tokenizer (trained on the base variant's output).
    pub vocab_size: usize,
    /// How the eval/train overlap is counted.
    pub overlap_unit: String,
    /// [`SIGNIFICANCE_RULE`].
    pub significance: String,
    pub eval_sets: Vec<EvalSetInfo>,
    /// The base variant first, then the others in the experiment file's order (never sorted
    /// by score).
    pub variants: Vec<VariantResult>,
}

/// One evaluation text file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSetInfo {
    pub name: String,
    pub path: String,
    /// UTF-8 bytes of the file's text: the denominator of bits per byte.
    pub bytes: u64,
    /// Tokens of the text (each predicted once; the first from a separator token).
    pub tokens: u64,
    /// Word 13-grams in the text (distinct).
    pub ngrams: u64,
    /// `decode(encode(text)) == text`: the tokens cover exactly the bytes counted.
    pub round_trip: bool,
}

/// One variant of the pipeline and its runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    /// What differs from the base pipeline, in words.
    pub change: String,
    /// Documents in the refined corpus (after the stages and dedup steps).
    pub docs_kept: u64,
    /// Tokens in the variant's token shards (document separators included).
    pub tokens_kept: u64,
    /// `tokens_per_run / tokens_kept`: passes over the corpus each run makes.
    pub epochs: f64,
    /// One per seed, in the experiment's seed order.
    pub runs: Vec<SeedRun>,
    /// Per eval set, in the experiment's order.
    pub summary: Vec<EvalSummary>,
    /// Per eval set: its overlap with this variant's training data.
    pub overlap: Vec<Overlap>,
}

/// The evaluation of one trained model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    pub seed: u64,
    /// Mean training loss of the last step.
    pub final_train_loss: f64,
    pub eval: Vec<EvalResult>,
}

/// One model on one eval set: `bits_per_byte = nats / ln 2 / bytes`, `loss = nats / tokens`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub set: String,
    /// Summed negative log-likelihood (natural log) of every token of the text.
    pub nats: f64,
    pub tokens: u64,
    pub bytes: u64,
    pub loss: f64,
    pub bits_per_byte: f64,
}

/// Bits per byte of one variant on one set over the seeds, and its difference from base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub set: String,
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation over seeds (n - 1).
    pub std: f64,
    /// `mean - base mean` (0 for the base).
    pub diff: f64,
    /// Standard error of the difference of the seed means.
    pub se: f64,
    pub significant: bool,
}

/// Exact 13-gram hits of an eval set in a variant's training data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    pub set: String,
    /// Distinct 13-grams of the eval set that occur in the training data.
    pub hits: u64,
    pub ngrams: u64,
    /// `hits / ngrams`.
    pub fraction: f64,
}

impl Ablation {
    /// Reads `DIR/ablation.json`.
    pub fn read(dir: &Path) -> Result<Self, ReportError> {
        let path = dir.join(ABLATION_FILE);
        let bytes = std::fs::read(&path).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ReportError::Json {
            path,
            message: e.to_string(),
        })
    }

    /// The base variant's spread: the noise every difference is judged against.
    pub fn noise(&self) -> Vec<(String, f64, f64)> {
        let Some(base) = self.variants.first() else {
            return Vec::new();
        };
        base.summary
            .iter()
            .map(|s| (s.set.clone(), s.std, s.std / (s.n.max(1) as f64).sqrt()))
            .collect()
    }
}

/// An ablation directory, read.
#[derive(Debug)]
pub struct AblationRun {
    pub dir: PathBuf,
    pub name: String,
    pub result: Ablation,
}

fn fmt_bpb(x: f64) -> String {
    format!("{x:.4}")
}

fn signed(x: f64) -> String {
    format!("{x:+.4}")
}

/// The table as plain text (the CLI prints this; the report has the HTML one).
pub fn text_table(a: &Ablation) -> String {
    let mut o = String::new();
    let mut head = vec![
        "variant".to_string(),
        "docs kept".into(),
        "tokens kept".into(),
        "epochs".into(),
    ];
    for s in &a.eval_sets {
        head.push(format!("{} bits/byte", s.name));
        head.push("diff".into());
        head.push("significant?".into());
    }
    let mut rows = vec![head];
    for (vi, v) in a.variants.iter().enumerate() {
        let mut r = vec![
            v.name.clone(),
            v.docs_kept.to_string(),
            v.tokens_kept.to_string(),
            epochs_str(v.epochs),
        ];
        for s in &v.summary {
            r.push(format!("{} ± {}", fmt_bpb(s.mean), fmt_bpb(s.std)));
            if vi == 0 {
                r.push("(base)".into());
                r.push("-".into());
            } else {
                r.push(format!("{} (se {})", signed(s.diff), fmt_bpb(s.se)));
                r.push(
                    if s.significant {
                        "yes"
                    } else {
                        "no: within noise"
                    }
                    .into(),
                );
            }
        }
        rows.push(r);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |x| x.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (x, w))| {
                if c == 0 {
                    format!("{x:<w$}")
                } else {
                    format!("{x:>w$}")
                }
            })
            .collect();
        let _ = writeln!(o, "{}", line.join("  ").trim_end());
    }
    let _ = writeln!(
        o,
        "\n{} seeds per variant, {} tokens per run ({} steps of {}x{}), model {} ({} parameters)",
        a.seeds.len(),
        a.tokens_per_run,
        a.steps,
        a.batch_size,
        a.seq_len,
        a.model,
        a.parameters
    );
    for (set, std, se) in a.noise() {
        let _ = writeln!(
            o,
            "noise on {set}: base seed std {}, standard error of its mean {}",
            fmt_bpb(std),
            fmt_bpb(se)
        );
    }
    let _ = writeln!(o, "{}", a.significance);
    for v in &a.variants {
        for ov in &v.overlap {
            if ov.hits > 0 {
                let _ = writeln!(
                    o,
                    "overlap: {} of {} eval 13-grams of {} occur in the training data of {} ({:.2}%)",
                    ov.hits,
                    ov.ngrams,
                    ov.set,
                    v.name,
                    100.0 * ov.fraction
                );
            }
        }
    }
    o
}

fn epochs_str(e: f64) -> String {
    if e > 1.0 {
        format!("{e:.2} (repeated)")
    } else {
        format!("{e:.2}")
    }
}

/// The ablation section of the report (run `i` of the page).
pub fn render(o: &mut String, i: usize, run: &AblationRun) {
    let a = &run.result;
    let _ = write!(
        o,
        "<section class=\"run\" data-run=\"{i}\" data-kind=\"ablation\" data-name=\"{}\"><h2>Ablation: {}</h2><p class=\"meta\">{} · model {} ({} parameters) · {} tokens per run ({} steps of {}×{}) · seeds {:?} · tokenizer vocab {}</p>",
        esc(&run.name),
        esc(&run.name),
        esc(&a.description),
        esc(&a.model),
        a.parameters,
        a.tokens_per_run,
        a.steps,
        a.batch_size,
        a.seq_len,
        a.seeds,
        a.vocab_size
    );
    // The table.
    o.push_str("<figure data-figure=\"ablation-table\"><h3>Bits per byte per variant</h3><table data-plot=\"ablation-table\"><tr><th>variant</th><th>change</th><th>documents kept</th><th>tokens kept</th><th>epochs</th>");
    for s in &a.eval_sets {
        let _ = write!(
            o,
            "<th>{} bits/byte (mean ± std)</th><th>difference from base (± se)</th><th>significant?</th>",
            esc(&s.name)
        );
    }
    o.push_str("</tr>");
    for (vi, v) in a.variants.iter().enumerate() {
        let _ = write!(
            o,
            "<tr data-variant=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&v.name),
            esc(&v.name),
            esc(&v.change),
            v.docs_kept,
            v.tokens_kept,
            esc(&epochs_str(v.epochs))
        );
        for s in &v.summary {
            let _ = write!(
                o,
                "<td data-set=\"{}\" data-mean=\"{}\" data-std=\"{}\">{} ± {}</td>",
                esc(&s.set),
                num(s.mean),
                num(s.std),
                fmt_bpb(s.mean),
                fmt_bpb(s.std)
            );
            if vi == 0 {
                o.push_str("<td>(base)</td><td>–</td>");
            } else {
                let _ = write!(
                    o,
                    "<td data-diff=\"{}\">{} ± {}</td><td>{}</td>",
                    num(s.diff),
                    signed(s.diff),
                    fmt_bpb(s.se),
                    if s.significant {
                        "yes"
                    } else {
                        "no: within noise"
                    }
                );
            }
        }
        o.push_str("</tr>");
    }
    o.push_str("</table><figcaption>");
    let _ = write!(
        o,
        "Bits per byte = summed negative log-likelihood of every token of the eval text (nats) / ln 2 / the text's UTF-8 bytes, so variants are comparable whatever their tokenization. Mean ± sample std over {} seeds. {}. Variants are listed in the experiment's order; a difference that is not significant is within the seed noise and ranks nothing. Epochs above 1: the variant's corpus was repeated to reach the budget.",
        a.seeds.len(),
        esc(&a.significance)
    );
    for (set, std, se) in a.noise() {
        let _ = write!(
            o,
            " Noise on {}: base std {}, standard error {}.",
            esc(&set),
            fmt_bpb(std),
            fmt_bpb(se)
        );
    }
    o.push_str("</figcaption></figure>");
    // One error-bar plot per eval set.
    for (si, set) in a.eval_sets.iter().enumerate() {
        let points: Vec<(String, f64, f64)> = a
            .variants
            .iter()
            .filter_map(|v| v.summary.get(si).map(|s| (v.name.clone(), s.mean, s.std)))
            .collect();
        let id = format!("ablation-bpb-{si}");
        let svg = error_bars(&id, &points, "bits per byte");
        let _ = write!(
            o,
            "<figure data-figure=\"{}\"><h3>{}: bits per byte per variant</h3>{svg}<figcaption>Each dot is the mean over seeds, the bar ± one sample standard deviation; the dashed line is the base variant's mean. Eval set {} ({} bytes, {} tokens).</figcaption></figure>",
            esc(&id),
            esc(&set.name),
            esc(&set.path),
            set.bytes,
            set.tokens
        );
    }
    // Overlap.
    o.push_str("<figure data-figure=\"ablation-overlap\"><h3>Eval sets in the training data</h3><table data-plot=\"ablation-overlap\"><tr><th>variant</th>");
    for s in &a.eval_sets {
        let _ = write!(o, "<th>{} 13-grams found</th>", esc(&s.name));
    }
    o.push_str("</tr>");
    for v in &a.variants {
        let _ = write!(o, "<tr><td>{}</td>", esc(&v.name));
        for ov in &v.overlap {
            let _ = write!(
                o,
                "<td data-hits=\"{}\">{} / {} ({:.2}%)</td>",
                ov.hits,
                ov.hits,
                ov.ngrams,
                100.0 * ov.fraction
            );
        }
        o.push_str("</tr>");
    }
    let _ = write!(
        o,
        "</table><figcaption>Exact matches: {}. Nothing is filtered out on purpose: hits mean the refined training data itself contains the eval text, which lowers its loss.</figcaption></figure></section>",
        esc(&a.overlap_unit)
    );
}

/// Dots with ± error bars, one row per label (horizontal, so long names fit).
pub fn error_bars(id: &str, points: &[(String, f64, f64)], x_label: &str) -> String {
    let width = crate::svg::WIDTH;
    let row_h = 22.0;
    let (left, right, top, bottom) = (170.0, 30.0, 10.0, 40.0);
    let height = top + row_h * points.len().max(1) as f64 + bottom;
    let finite = points
        .iter()
        .filter(|p| p.1.is_finite())
        .flat_map(|p| [p.1 - p.2.max(0.0), p.1 + p.2.max(0.0)]);
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
        (l.min(x), h.max(x))
    });
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let (lo, hi) = (lo - pad, hi + pad);
    let plot_w = width - left - right;
    let x = |v: f64| left + (v - lo) / (hi - lo) * plot_w;
    let mut o = format!(
        "<svg data-plot=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" {}>",
        esc(id),
        crate::svg::FONT,
        w = num(width),
        h = num(height)
    );
    let axis_y = top + row_h * points.len().max(1) as f64;
    for t in crate::svg::ticks(lo, hi, 5) {
        let _ = write!(
            o,
            "<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#eee\"/><text x=\"{x}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            esc(&format!("{t:.3}")),
            x = num(x(t)),
            top = num(top),
            b = num(axis_y),
            ty = num(axis_y + 14.0)
        );
    }
    if let Some(base) = points.first().filter(|p| p.1.is_finite()) {
        let _ = write!(
            o,
            "<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
            x = num(x(base.1)),
            top = num(top),
            b = num(axis_y)
        );
    }
    for (i, (label, mean, std)) in points.iter().enumerate() {
        let y = top + row_h * (i as f64 + 0.5);
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
            num(left - 8.0),
            num(y + 4.0),
            esc(label)
        );
        if !mean.is_finite() {
            continue;
        }
        let s = if std.is_finite() { std.max(0.0) } else { 0.0 };
        let _ = write!(
            o,
            "<g data-label=\"{}\" data-value=\"{}\" data-std=\"{}\"><line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"2\"/><line x1=\"{a}\" y1=\"{y0}\" x2=\"{a}\" y2=\"{y1}\" stroke=\"{color}\"/><line x1=\"{b}\" y1=\"{y0}\" x2=\"{b}\" y2=\"{y1}\" stroke=\"{color}\"/><circle cx=\"{}\" cy=\"{y}\" r=\"4\" fill=\"{color}\"><title>{}: {} ± {}</title></circle></g>",
            esc(label),
            num(*mean),
            num(s),
            num(x(mean - s)),
            num(x(mean + s)),
            num(x(*mean)),
            esc(label),
            fmt_bpb(*mean),
            fmt_bpb(s),
            y = num(y),
            a = num(x(mean - s)),
            b = num(x(mean + s)),
            y0 = num(y - 5.0),
            y1 = num(y + 5.0),
        );
    }
    let _ = write!(
        o,
        "<line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/><text x=\"{cx}\" y=\"{ly}\" text-anchor=\"middle\" fill=\"#555\">{}</text></svg>",
        esc(x_label),
        l = num(left),
        r = num(width - right),
        b = num(axis_y),
        cx = num(left + plot_w / 2.0),
        ly = num(axis_y + 32.0)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(mean: f64, std: f64, diff: f64, se: f64, significant: bool) -> EvalSummary {
        EvalSummary {
            set: "wiki".into(),
            n: 2,
            mean,
            std,
            diff,
            se,
            significant,
        }
    }

    fn variant(name: &str, s: EvalSummary, epochs: f64) -> VariantResult {
        VariantResult {
            name: name.into(),
            change: format!("change of {name}"),
            docs_kept: 10,
            tokens_kept: 1000,
            epochs,
            runs: Vec::new(),
            summary: vec![s],
            overlap: vec![Overlap {
                set: "wiki".into(),
                hits: 3,
                ngrams: 300,
                fraction: 0.01,
            }],
        }
    }

    fn fixture() -> Ablation {
        Ablation {
            experiment: "exp.toml".into(),
            description: "d".into(),
            model: "gpt-tiny".into(),
            parameters: 123,
            tokens_per_run: 2048,
            budget_tokens: 2000,
            steps: 4,
            batch_size: 4,
            seq_len: 128,
            seeds: vec![0, 1],
            vocab_size: 500,
            overlap_unit: "13-grams".into(),
            significance: SIGNIFICANCE_RULE.into(),
            eval_sets: vec![EvalSetInfo {
                name: "wiki".into(),
                path: "wiki.txt".into(),
                bytes: 100,
                tokens: 30,
                ngrams: 300,
                round_trip: true,
            }],
            variants: vec![
                variant("base", summary(1.5, 0.01, 0.0, 0.014, false), 0.5),
                variant("better", summary(1.4, 0.01, -0.1, 0.014, true), 2.05),
                variant("same", summary(1.51, 0.02, 0.01, 0.022, false), 0.4),
            ],
        }
    }

    #[test]
    fn the_section_has_every_variant_its_numbers_and_the_error_bars() {
        let run = AblationRun {
            dir: "x".into(),
            name: "x".into(),
            result: fixture(),
        };
        let mut o = String::new();
        render(&mut o, 0, &run);
        for v in ["base", "better", "same"] {
            assert!(o.contains(&format!("<tr data-variant=\"{v}\">")), "{v}");
            assert!(o.contains(&format!("<g data-label=\"{v}\"")), "{v}");
        }
        assert!(o.contains("data-mean=\"1.4\" data-std=\"0.01\""));
        assert!(o.contains("data-diff=\"-0.1\""));
        assert!(o.contains("2.05 (repeated)"));
        assert!(o.contains("data-plot=\"ablation-bpb-0\""));
        assert!(o.contains("data-hits=\"3\""));
        // One significant difference, one within the noise.
        assert_eq!(o.matches("no: within noise").count(), 1);
        assert_eq!(o.matches("<td>yes</td>").count(), 1);
        let t = text_table(&run.result);
        let better = t.lines().find(|l| l.starts_with("better")).unwrap();
        assert!(better.contains("-0.1000 (se 0.0140)"), "{t}");
        assert!(better.ends_with(" yes"), "{t}");
        let same = t.lines().find(|l| l.starts_with("same")).unwrap();
        assert!(same.ends_with("no: within noise"), "{t}");
        assert!(t.contains("noise on wiki: base seed std 0.0100"), "{t}");
    }

    #[test]
    fn error_bars_place_dots_in_order_of_value() {
        let svg = error_bars(
            "p",
            &[("a".into(), 1.0, 0.1), ("b".into(), 2.0, 0.1)],
            "bits",
        );
        let cx: Vec<f64> = svg
            .match_indices("<circle cx=\"")
            .map(|(i, m)| {
                let rest = &svg[i + m.len()..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(cx.len(), 2);
        assert!(cx[0] < cx[1]);
    }
}
