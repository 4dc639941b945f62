use refinery_corpus::{Document, Modifier, Verdict};

use super::*;

fn ex(html: &str) -> Extracted {
    extract(html, &ExtractOptions::default())
}

fn page(body: &str) -> String {
    format!("<!doctype html><html><head><title>T</title></head><body>{body}</body></html>")
}

#[test]
fn paragraphs_and_inline_markup() {
    let out = ex(&page(
        "<p>Hello <b>bold</b>   <i>world</i>.</p>\n<p>Second\n   line.</p>",
    ));
    assert_eq!(out.title.as_deref(), Some("T"));
    assert_eq!(out.text, "Hello bold world.\n\nSecond line.");
}

#[test]
fn br_is_a_newline() {
    let out = ex(&page("<p>one<br>two<br/>three</p>"));
    assert_eq!(out.text, "one\ntwo\nthree");
}

#[test]
fn list_items_one_per_line() {
    let out = ex(&page(
        "<p>Intro:</p><ul><li>alpha</li><li>beta <em>b</em></li></ul><ol><li>x</li></ol>",
    ));
    assert_eq!(out.text, "Intro:\n\nalpha\nbeta b\n\nx");
}

#[test]
fn table_rows_are_lines_and_cells_tab_separated() {
    let out = ex(&page(
        "<table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td> 31 </td></tr></table>",
    ));
    assert_eq!(out.text, "Name\tAge\nAnn\t31");
}

#[test]
fn headings_are_paragraphs() {
    let out = ex(&page(
        "<h2>Part one</h2>Some text here.<h3>Part two</h3><div>More</div>",
    ));
    assert_eq!(out.text, "Part one\n\nSome text here.\n\nPart two\n\nMore");
}

#[test]
fn pre_keeps_line_breaks() {
    let out = ex(&page("<pre>fn main() {\n    run();\n}</pre>"));
    assert_eq!(out.text, "fn main() {\nrun();\n}");
}

#[test]
fn nav_header_footer_aside_script_style_form_are_dropped() {
    let out = ex(&page(
        "<header><a href='/'>Logo</a> Site name</header>\
         <nav><ul><li><a href='/a'>Menu A</a></li><li><a href='/b'>Menu B</a></li></ul></nav>\
         <script>var x = 1;</script><style>p { color: red }</style><noscript>Enable JS</noscript>\
         <p>The real content.</p>\
         <aside>Related stuff</aside><form><label>Search</label><input></form>\
         <iframe src='x'></iframe><svg><text>svg text</text></svg>\
         <footer>Copyright 2024 Example</footer>",
    ));
    assert_eq!(out.text, "The real content.");
}

#[test]
fn boilerplate_classes_and_ids_are_dropped() {
    // The boilerplate stripper on its own (Readability turns text-only divs
    // into bare paragraphs, losing their class names).
    let stripper = ExtractOptions {
        readability: false,
        ..Default::default()
    };
    let out = extract(
        &page(
            "<div id='cookie-notice'>We use cookies. Accept?</div>\
         <div class='main-menu'>Home About Contact</div>\
         <div class='content'><p>Article text that matters.</p>\
           <div class='share-buttons'>Share on Facebook</div>\
           <div id='comments'>Nice post! — Bob</div></div>\
         <div class='sidebar'>Popular posts</div>\
         <div class='site-footer'>Impressum</div>",
        ),
        &stripper,
    );
    assert_eq!(out.text, "Article text that matters.");
}

#[test]
fn hidden_elements_and_link_lists_are_dropped() {
    let out = ex(&page(
        "<div style='display: none'>invisible</div><div hidden>also invisible</div>\
         <div aria-hidden='true'>aria hidden</div>\
         <div><a href='/1'>Link one</a> | <a href='/2'>Link two</a> | <a href='/3'>Link three</a></div>\
         <p>Body text with <a href='/x'>a link</a> inside it.</p>",
    ));
    assert_eq!(out.text, "Body text with a link inside it.");
}

#[test]
fn wrapper_with_boilerplate_name_is_kept() {
    // The only content sits inside a wrapper whose id says "sidebar".
    let long = "This sentence is part of a long enough body of text. ".repeat(10);
    let out = ex(&page(&format!(
        "<div id='page-with-sidebar'><p>{long}</p></div>"
    )));
    assert_eq!(out.text, long.trim());
}

#[test]
fn article_pages_go_through_readability() {
    let para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
                tempor incididunt ut labore et dolore magna aliqua, ut enim ad minim veniam.";
    let body = format!(
        "<div class='topbar'><a href='/'>Home</a><a href='/news'>News</a><a href='/sport'>Sport</a></div>\
         <div class='story'><h1>Headline</h1>{}</div>\
         <div class='teasers'><a href='/o1'>Other story one</a><a href='/o2'>Other story two</a></div>",
        (0..8).map(|i| format!("<p>{i}. {para}</p>")).collect::<String>()
    );
    let out = ex(&page(&body));
    assert!(
        out.text.starts_with("0. Lorem ipsum") || out.text.starts_with("Headline"),
        "{}",
        out.text
    );
    assert!(out.text.contains("7. Lorem ipsum"));
    assert!(!out.text.contains("Other story"));
    assert!(!out.text.contains("Sport"));
}

#[test]
fn title_fallbacks() {
    let t = |h: &str| ex(h).title;
    assert_eq!(
        t("<title>\n  A \t title \n</title><p>x</p>").as_deref(),
        Some("A title")
    );
    assert_eq!(
        t("<head><meta property='og:title' content=' OG  title '></head><body><h1>H</h1></body>")
            .as_deref(),
        Some("OG title")
    );
    assert_eq!(
        t("<title>  </title><body><h1>First <b>h1</b></h1><h1>Second</h1></body>").as_deref(),
        Some("First h1")
    );
    assert_eq!(t("<p>no title at all</p>"), None);
}

#[test]
fn include_title_puts_it_first() {
    let opts = ExtractOptions {
        include_title: true,
        ..Default::default()
    };
    let out = extract(&page("<p>Body.</p>"), &opts);
    assert_eq!(out.text, "T\n\nBody.");
    assert_eq!(out.title.as_deref(), Some("T"));
}

#[test]
fn newline_cap() {
    let html = page("<p>a</p><br><br><br><br><p>b</p><div>c<br><br><br>d</div>");
    assert_eq!(ex(&html).text, "a\n\nb\n\nc\n\nd");
    let one = ExtractOptions {
        max_newlines: 1,
        ..Default::default()
    };
    assert_eq!(extract(&html, &one).text, "a\nb\nc\nd");
    let zero = ExtractOptions {
        max_newlines: 0,
        ..Default::default()
    };
    assert_eq!(extract(&html, &zero).text, "a b c d");
    let three = ExtractOptions {
        max_newlines: 3,
        ..Default::default()
    };
    assert!(!extract(&html, &three).text.contains("\n\n\n\n"));
}

#[test]
fn url_stripping() {
    let html = page(
        "<p>See https://example.com/a?b=1 and www.example.org, or (http://x.y/z).</p>\
         <p>Keep foo.www.bar and mail@www.example.com as they are.</p><p>http://only.example</p>",
    );
    let plain = ex(&html);
    assert!(plain.text.contains("https://example.com/a?b=1"));
    let opts = ExtractOptions {
        strip_urls: true,
        ..Default::default()
    };
    let out = extract(&html, &opts);
    assert_eq!(
        out.text,
        "See and , or ().\n\nKeep foo.www.bar and mail@www.example.com as they are."
    );
}

#[test]
fn empty_malformed_and_binary_input_never_panic() {
    for html in [
        "",
        "   \n\t ",
        "<",
        "<<<>>>",
        "<html><body><p>unclosed <b>bold <i>both",
        "</p></div></body></html>",
        "<table><td>cell without row<tr>",
        "<!-- unterminated comment",
        "<script>never closed",
        "<p>\u{0}\u{1}\u{7f} nul</p>",
        "plain text, no tags at all",
        "<svg><foreignObject><p>x</p></foreignObject></svg>",
        "<math><mi>x</mi></math><template><p>t</p></template>",
    ] {
        let _ = ex(html);
    }
    assert_eq!(ex(""), Extracted::default());
    assert_eq!(
        ex("plain text, no tags at all").text,
        "plain text, no tags at all"
    );
    let t = ex("<p>a\u{0}\u{1}\u{7}b</p>").text;
    assert!(
        t.starts_with('a') && t.ends_with('b') && !t.chars().any(|c| c.is_control()),
        "{t:?}"
    );

    let mut junk = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    let _ = ex(&String::from_utf8_lossy(&junk));
}

#[test]
fn deep_nesting_does_not_overflow() {
    // With the depth limit off, the walks (explicit stacks) handle any depth;
    // by default such a page is over `max_depth` and gives no text. The time
    // budget is off too: a debug build on a loaded machine can take longer
    // than 10 s for 20,000 levels.
    let unlimited = ExtractOptions {
        max_depth: 0,
        timeout_ms: 0,
        ..Default::default()
    };
    let n = 20_000;
    let html = format!("{}deep{}", "<div>".repeat(n), "</div>".repeat(n));
    assert_eq!(extract(&html, &unlimited).text, "deep");
    assert_eq!(ex(&html).text, "");
    assert_eq!(
        try_extract(&html, &ExtractOptions::default()),
        Err(ExtractError::TooDeep { limit: 2_000 })
    );
    let html = format!("{}x", "<b>".repeat(n));
    assert_eq!(extract(&html, &unlimited).text, "x");
}

#[test]
fn options_serde_defaults_and_unknown_fields() {
    let o: ExtractOptions = serde_json::from_str(r#"{"strip_urls": true}"#).unwrap();
    assert_eq!(
        o,
        ExtractOptions {
            strip_urls: true,
            ..Default::default()
        }
    );
    assert_eq!(o.max_newlines, 2);
    assert_eq!(o.min_text_chars, 1);
    assert!(!o.include_title);
    assert!(serde_json::from_str::<ExtractOptions>(r#"{"nope": 1}"#).is_err());
}

#[test]
fn stage_extracts_html_and_sets_title() {
    let mut stage = ExtractStage::default();
    let mut doc = Document::new("1", page("<nav>Menu</nav><p>Body text.</p>"), "x.warc");
    doc.is_html = true;
    assert_eq!(stage.modify(&mut doc), Verdict::Keep);
    assert_eq!(doc.text, "Body text.");
    assert!(!doc.is_html);
    assert_eq!(
        doc.metadata.get("title"),
        Some(&serde_json::Value::from("T"))
    );
}

#[test]
fn stage_passes_non_html_through() {
    let mut stage = ExtractStage::default();
    let text = "<p>looks like html</p> but is a text document";
    let mut doc = Document::new("1", text, "x.jsonl");
    assert_eq!(stage.modify(&mut doc), Verdict::Keep);
    assert_eq!(doc.text, text);
    assert!(doc.metadata.get("title").is_none());
}

#[test]
fn stage_drops_empty_and_short() {
    let mut stage = ExtractStage::default();
    let mut doc = Document::new(
        "1",
        "<html><head><title>Only a title</title></head><body><nav>x</nav></body></html>",
        "s",
    );
    doc.is_html = true;
    assert_eq!(stage.modify(&mut doc), Verdict::drop("extract:empty"));
    assert_eq!(
        doc.metadata.get("title"),
        Some(&serde_json::Value::from("Only a title"))
    );

    let mut strict = ExtractStage::new(ExtractOptions {
        min_text_chars: 20,
        ..Default::default()
    });
    let mut doc = Document::new("2", page("<p>short</p>"), "s");
    doc.is_html = true;
    assert_eq!(strict.modify(&mut doc), Verdict::drop("extract:empty"));
}

fn long_para(i: usize) -> String {
    format!(
        "<p>{i}. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
         tempor incididunt ut labore et dolore magna aliqua, ut enim ad minim veniam.</p>"
    )
}

#[test]
fn rule_container_keeps_lead_and_drops_loose_text_captions_and_trailing_headings() {
    let paras: String = (0..8).map(long_para).collect();
    let body = format!(
        "<div class='topbar'><a href='/'>Home</a> <a href='/news'>News</a></div>\
         <article><header><h1>The headline</h1><p class='lead'>The lead paragraph.</p></header>\
         <div class='entry-content'>\
           <div class='byline'>By Someone, 1 May</div>\
           {paras}\
           <figure><img src='x.jpg'><figcaption>Photo: Agency</figcaption></figure>\
           <ul><li>ingredient one</li><li>ingredient two</li></ul>\
           <h2>Related articles</h2>\
           <ul><li><a href='/a'>Another story</a></li><li><a href='/b'>Yet another story</a></li></ul>\
         </div></article>\
         <div class='teasers'><a href='/o1'>Other story one</a></div>"
    );
    let out = ex(&page(&body));
    assert!(out.text.contains("0. Lorem ipsum"), "{}", out.text);
    assert!(out.text.contains("7. Lorem ipsum"), "{}", out.text);
    assert!(
        out.text.contains("ingredient one\ningredient two"),
        "{}",
        out.text
    );
    for gone in [
        "By Someone",
        "Photo: Agency",
        "Related articles",
        "Another story",
        "Other story",
        "Home",
    ] {
        assert!(!out.text.contains(gone), "{gone:?} in {}", out.text);
    }
}

#[test]
fn article_header_is_kept() {
    let paras: String = (0..8).map(long_para).collect();
    let body = format!(
        "<header><a href='/'>Site</a></header>         <article><header><h1>The headline</h1><p>The lead paragraph.</p></header>{paras}</article>"
    );
    for readability in [true, false] {
        let opts = ExtractOptions {
            readability,
            ..Default::default()
        };
        let out = extract(&page(&body), &opts);
        assert!(
            out.text.contains("The lead paragraph.\n\n0. Lorem"),
            "{}",
            out.text
        );
        assert!(!out.text.contains("Site"), "{}", out.text);
    }
}

#[test]
fn short_rule_container_falls_through() {
    // A matching container with too little text is not trusted.
    let paras: String = (0..6).map(long_para).collect();
    let out = ex(&page(&format!(
        "<div class='post-content'>Teaser.</div><div id='story'>{paras}</div>"
    )));
    assert!(out.text.contains("5. Lorem ipsum"), "{}", out.text);
}

#[test]
fn big_noscript_and_form_are_rendered_small_ones_not() {
    let paras: String = (0..4).map(long_para).collect();
    let stripper = ExtractOptions {
        readability: false,
        ..Default::default()
    };
    let out = extract(
        &page(&format!(
            "<noscript>Please enable JavaScript.</noscript><noscript><div>{paras}</div></noscript>"
        )),
        &stripper,
    );
    assert!(out.text.starts_with("0. Lorem"), "{}", out.text);
    assert!(!out.text.contains("enable JavaScript"), "{}", out.text);
    let out = extract(
        &page(&format!(
            "<form><label>Search</label><input></form><form id='aspnetForm'>{paras}</form>"
        )),
        &stripper,
    );
    assert!(out.text.starts_with("0. Lorem"), "{}", out.text);
    assert!(!out.text.contains("Search"), "{}", out.text);
}

#[test]
fn boilerplate_words_match_whole_words_only() {
    use render::{elem_info, Attr};
    let attr = |class: &str| {
        let doc = dom_query::Document::from(format!("<div class='{class}'>x</div>").as_str());
        let sel = doc.select("div");
        let id = sel.nodes()[0].id;
        doc.tree
            .query_node(&id, |n| elem_info(n).map(|i| i.boilerplate_attr))
            .flatten()
    };
    // Substrings inside other words are not boilerplate.
    assert_eq!(attr("APageRoot__Sections"), Some(Attr::Clean));
    assert_eq!(attr("elementor-widget-container"), Some(Attr::Clean));
    assert_eq!(attr("margin-bottom padding-top"), Some(Attr::Clean));
    // Words, camelCase humps, prefixes and suffixes are.
    for class in [
        "site-footer",
        "commentList",
        "sharebar",
        "widget_text",
        "main-menu",
        "cookie-notice",
    ] {
        assert_eq!(attr(class), Some(Attr::Strong), "{class}");
    }
}
