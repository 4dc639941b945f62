//! Regression tests for issue 16 part 4: extraction time grew with the square
//! of the nesting depth (100k unclosed `<div><span><b>` took 55 s for one
//! page) and memory with the node count, with no limit. Every page here is
//! generated at test time.

use std::time::{Duration, Instant};

use refinery_corpus::{Document, Modifier, Verdict};
use refinery_extract::{try_extract, ExtractError, ExtractOptions, ExtractStage};

/// `<div><span><b>` repeated `reps` times (the "nesting depth"),
/// never closed, then text: a DOM `3 · reps` elements deep.
fn nested_unclosed(reps: usize) -> String {
    let mut html = String::with_capacity(reps * 14 + 100);
    html.push_str("<html><body>");
    for _ in 0..reps {
        html.push_str("<div><span><b>");
    }
    html.push_str("deep text");
    html
}

fn article(paragraphs: usize) -> String {
    let mut html = String::from("<html><head><title>t</title></head><body><article>");
    for i in 0..paragraphs {
        html.push_str(&format!(
            "<p>Paragraph {i} of the article, with enough words to count as text.</p>"
        ));
    }
    html.push_str("</article></body></html>");
    html
}

#[test]
fn nested_unclosed_tags_100k_deep_are_dropped_as_too_deep_quickly() {
    let html = nested_unclosed(100_000);
    assert!(html.len() > 1_400_000);
    let t = Instant::now();
    let out = try_extract(&html, &ExtractOptions::default());
    let elapsed = t.elapsed();
    assert_eq!(out, Err(ExtractError::TooDeep { limit: 2_000 }));
    // Before the limit this 1.4 MB page took 55.6 s (release build); now
    // parsing stops one 8 KiB chunk past depth 2,000.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn nesting_below_the_depth_limit_is_still_extracted() {
    let html = nested_unclosed(600);
    let out = try_extract(&html, &ExtractOptions::default()).expect("under the limit");
    assert_eq!(out.text, "deep text");
    // No limit at all: the same page, the same text.
    let unlimited = ExtractOptions {
        max_depth: 0,
        max_nodes: 0,
        timeout_ms: 0,
        ..ExtractOptions::default()
    };
    assert_eq!(try_extract(&html, &unlimited), Ok(out));
}

#[test]
fn cost_of_a_deep_page_does_not_grow_with_its_depth() {
    // Past the limit, a page 4 times deeper costs about the same (parsing
    // stops at the limit); with the quadratic parse it cost 16 times more.
    let opts = ExtractOptions::default();
    let time = |levels: usize| {
        let html = nested_unclosed(levels);
        let t = Instant::now();
        assert!(matches!(
            try_extract(&html, &opts),
            Err(ExtractError::TooDeep { .. })
        ));
        t.elapsed()
    };
    let small = (0..3).map(|_| time(25_000)).min().unwrap_or_default();
    let large = (0..3).map(|_| time(100_000)).min().unwrap_or_default();
    assert!(
        large < small * 4 + Duration::from_millis(50),
        "25k repetitions {small:?}, 100k repetitions {large:?}"
    );
}

#[test]
fn many_flat_spans_are_dropped_as_too_many_nodes() {
    let mut html = String::from("<html><body><p>");
    for i in 0..60_000 {
        html.push_str(&format!("<span>{i}</span>"));
    }
    let opts = ExtractOptions {
        max_nodes: 50_000,
        ..ExtractOptions::default()
    };
    assert_eq!(
        try_extract(&html, &opts),
        Err(ExtractError::TooManyNodes { limit: 50_000 })
    );
    // The default limit (500k nodes) lets such a page through.
    let out = try_extract(&html, &ExtractOptions::default()).expect("default limit");
    assert!(out.text.starts_with("0123"), "{}", &out.text[..20]);
}

#[test]
fn a_page_over_the_time_budget_is_dropped_as_timeout() {
    // About 3 MB of paragraphs: parsing alone takes far more than 1 ms.
    let html = article(40_000);
    let opts = ExtractOptions {
        timeout_ms: 1,
        ..ExtractOptions::default()
    };
    assert_eq!(
        try_extract(&html, &opts),
        Err(ExtractError::Timeout { limit_ms: 1 })
    );
}

#[test]
fn the_stage_drops_pages_over_a_limit_with_their_reason() {
    let cases = [
        (
            nested_unclosed(10_000),
            ExtractOptions::default(),
            "extract:too_deep",
        ),
        (
            article(2_000),
            ExtractOptions {
                max_nodes: 1_000,
                ..ExtractOptions::default()
            },
            "extract:too_many_nodes",
        ),
        (
            article(40_000),
            ExtractOptions {
                timeout_ms: 1,
                ..ExtractOptions::default()
            },
            "extract:timeout",
        ),
    ];
    for (html, opts, reason) in cases {
        let mut stage = ExtractStage::new(opts);
        let mut doc = Document::new("id", html, "generated.html");
        doc.is_html = true;
        assert_eq!(stage.modify(&mut doc), Verdict::drop(reason));
    }
}
