//! `refinery extract`: main text of HTML files as JSON lines.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use refinery_corpus::readers::{charset, decompress, Format};
use refinery_extract::{try_extract, ExtractOptions};

#[derive(Args)]
#[command(after_help = "\
Examples:
  refinery extract page.html
  refinery extract pages/*.html.gz > pages.jsonl
  refinery extract --strip-urls --include-title page.html | jq -r .text")]
pub struct ExtractArgs {
    /// HTML files; gzip or zstd compression is detected from the content.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Put the title at the top of the text as well.
    #[arg(long)]
    pub include_title: bool,
    /// Remove URLs from the text.
    #[arg(long)]
    pub strip_urls: bool,
}

pub fn extract(args: ExtractArgs) -> Result<ExitCode> {
    let opts = ExtractOptions {
        include_title: args.include_title,
        strip_urls: args.strip_urls,
        ..ExtractOptions::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0;
    for path in &args.paths {
        match read_html(path) {
            Ok(html) => {
                // A page over a limit (depth, nodes, time) is an error naming it, not an empty
                // text that looks like a page without content.
                let page = match try_extract(&html, &opts) {
                    Ok(page) => page,
                    Err(e) => {
                        failures += 1;
                        eprintln!("error: {}: {e}", path.display());
                        continue;
                    }
                };
                let line = serde_json::json!({
                    "path": path.display().to_string(),
                    "title": page.title,
                    "text": page.text,
                });
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                failures += 1;
                eprintln!("error: {}: {e}", path.display());
            }
        }
    }
    out.flush()?;
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_html(path: &PathBuf) -> Result<String> {
    let file = std::fs::File::open(path)?;
    let (_, mut stream) = decompress::sniff(file, Format::Html)
        .map_err(|f| anyhow::anyhow!("{}: {}", f.reason, f.detail))?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    Ok(charset::decode(&bytes, None, true).text)
}
