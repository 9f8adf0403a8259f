//! report.html in a real browser: reports from real runs (a failing run with a waiver and a
//! latency chart, a passing run signed with a real SSH key) are loaded in headless Chromium
//! (Debian's `chromium`), their rendered DOM is read back with a real HTML parser, they are
//! printed to PDF and read back with `pdftotext` (poppler-utils), and a screenshot of each is
//! kept under `target/html-report/` as an artefact. Chromium's network log must show no
//! request at all and its console no message.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{PaperBroker, describe, keygen, report_json, run_in, write};
use scraper::{Html, Selector};

/// Where screenshots and PDFs are kept after the test.
fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium on a file (see [`common::chromium`]).
fn chromium(work: &Path, page: &Path, args: &[String]) -> (String, String) {
    common::chromium(work, &format!("file://{}", page.display()), args)
}

/// What one report looks like once Chromium has loaded, printed and shot it.
struct Rendered {
    /// The DOM after loading (`--dump-dom`).
    dom: Html,
    /// The printed PDF's text (`pdftotext`, in reading order: a table cell's lines stay
    /// together).
    pdf_text: String,
    /// Pages of the printed PDF.
    pages: usize,
    /// Each page's words, in lower case.
    page_words: Vec<Vec<String>>,
}

/// Load `report_dir/report.html` in Chromium: the DOM, a PDF (kept as `name.pdf`), a
/// screenshot (`name.png`) and the network log, which must hold no request, and the console,
/// which must stay silent.
fn render(work: &Path, report_dir: &Path, name: &str) -> Rendered {
    let page = report_dir.join("report.html");
    let netlog = work.join(format!("{name}.netlog.json"));
    let (dom, err) = chromium(
        work,
        &page,
        &[
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
        ],
    );
    let requests = page_requests(&netlog);
    assert!(
        requests.is_empty(),
        "{name}: the page made network requests: {requests:?}"
    );
    let console = console_lines(&err);
    assert!(console.is_empty(), "{name}: console output: {console:?}");
    let pdf = artefacts().join(format!("{name}.pdf"));
    chromium(
        work,
        &page,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
        ],
    );
    let png = artefacts().join(format!("{name}.png"));
    chromium(
        work,
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,1600".into(),
        ],
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 10_000,
        "{name}: screenshot"
    );
    let text = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(text.status.success(), "pdftotext: {}", describe(&text));
    let pdf_text = String::from_utf8(text.stdout).unwrap();
    // pdftotext ends every page with a form feed.
    let page_words: Vec<Vec<String>> = pdf_text
        .split('\u{c}')
        .map(|p| {
            p.to_lowercase()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .filter(|p: &Vec<String>| !p.is_empty())
        .collect();
    Rendered {
        dom: Html::parse_document(&dom),
        pdf_text,
        pages: page_words.len(),
        page_words,
    }
}

/// The requests the page itself started, from Chromium's network log (`--log-net-log`): jobs
/// whose network isolation key is the page's `file://` site and whose URL is not a file.
/// Chromium's own background requests (its isolation key is not the page's) are not counted.
fn page_requests(netlog: &Path) -> Vec<String> {
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(netlog).unwrap()).unwrap();
    let start_job = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    assert!(
        start_job.is_number(),
        "no URL_REQUEST_START_JOB in the net log constants"
    );
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| &e["type"] == start_job)
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.contains("file://"))
        })
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|url| !url.starts_with("file:"))
        .map(str::to_string)
        .collect()
}

/// The page's console messages, as Chromium logs them on stderr (`--enable-logging=stderr`).
fn console_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_browser_checks_catch_a_request_and_a_console_message() {
    // The control for the checks below: a page that fetches and logs is caught by both.
    let work = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let page = write(
        work.path(),
        "noisy.html",
        &format!(
            "<!doctype html><title>x</title><img src=\"http://127.0.0.1:{port}/x.png\"><script>console.error(\"boom\")</script>"
        ),
    );
    let netlog = work.path().join("noisy.netlog.json");
    let (_, err) = chromium(
        work.path(),
        &page,
        &[
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
        ],
    );
    assert_eq!(
        page_requests(&netlog),
        vec![format!("http://127.0.0.1:{port}/x.png")]
    );
    assert_eq!(console_lines(&err).len(), 1, "{err}");
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn texts(dom: &Html, s: &str) -> Vec<String> {
    dom.select(&sel(s))
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

/// The page is self-contained: no script, no stylesheet link, nothing loaded from a URL.
fn assert_self_contained(html: &str) {
    let doc = Html::parse_document(html);
    assert_eq!(doc.select(&sel("script")).count(), 0, "a <script> element");
    assert_eq!(doc.select(&sel("link")).count(), 0, "a <link> element");
    let loading: Vec<_> = doc
        .select(&sel(
            "[src], [srcset], [data], [poster], iframe, object, embed, img",
        ))
        .map(|el| format!("{:?}", el.value()))
        .collect();
    assert!(
        loading.is_empty(),
        "elements that load resources: {loading:?}"
    );
    for el in doc.select(&sel("[href]")) {
        let href = el.value().attr("href").unwrap();
        assert!(
            !href.contains(':') && !href.starts_with("//"),
            "link {href:?} leaves the page"
        );
    }
    for style in doc.select(&sel("style, [style]")) {
        let css: String =
            style.text().collect::<String>() + style.value().attr("style").unwrap_or("");
        assert!(
            !css.contains("url(") && !css.contains("@import"),
            "CSS loads something"
        );
    }
}

/// Every item has one summary row and an article, and its id is in the printed text.
/// No summary row is cut by a page break: some page holds every word of every data cell of
/// the row, in order (pdftotext may interleave the lines of neighbouring cells, but keeps each
/// cell's words in order). The row header is left out: its title and id are separate blocks.
fn assert_rows_whole(r: &Rendered) {
    let in_order = |page: &[String], cell: &[String]| {
        let mut words = page.iter();
        cell.iter().all(|w| words.any(|p| p == w))
    };
    for tr in r.dom.select(&sel("table.summary tbody tr")) {
        // In lower case: the stylesheet upper-cases status words.
        let cells: Vec<Vec<String>> = tr
            .select(&sel("td"))
            .map(|c| {
                let t = c.text().collect::<String>().to_lowercase();
                t.split_whitespace().map(str::to_string).collect()
            })
            .collect();
        assert!(
            r.page_words
                .iter()
                .any(|p| cells.iter().all(|c| in_order(p, c))),
            "summary row {cells:?} is not whole on any page"
        );
    }
}

fn assert_items(r: &Rendered, report: &serde_json::Value) {
    let ids: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let rows: Vec<String> = r
        .dom
        .select(&sel("table.summary tbody tr"))
        .map(|tr| tr.value().attr("data-item").unwrap().to_string())
        .collect();
    assert_eq!(rows, ids, "one summary row per item, in order");
    assert_rows_whole(r);
    let squeezed: String = r.pdf_text.split_whitespace().collect();
    for id in &ids {
        assert_eq!(
            r.dom
                .select(&sel(&format!("article[data-item=\"{id}\"]")))
                .count(),
            1,
            "{id}"
        );
        assert!(
            squeezed.contains(id),
            "item id {id} missing from the PDF:\n{}",
            r.pdf_text
        );
    }
    for (i, item) in report["items"].as_array().unwrap().iter().enumerate() {
        let status = item["outcome"]["status"].as_str().unwrap();
        let cell = texts(
            &r.dom,
            &format!("table.summary tbody tr:nth-child({}) .badge", i + 1),
        );
        assert_eq!(
            cell,
            vec![status.to_string()],
            "status of {} as a word",
            ids[i]
        );
    }
}

/// Every chart an item lists as evidence is inline in its article with a size, and was drawn:
/// its first text is in the PDF. Returns how many charts there are.
fn assert_charts(r: &Rendered, report: &serde_json::Value) -> usize {
    let squeezed: String = r.pdf_text.split_whitespace().collect();
    let mut charts = 0;
    for item in report["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let svgs: Vec<_> = item["outcome"]["evidence"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter(|e| e["media_type"] == "image/svg+xml")
                    .collect()
            })
            .unwrap_or_default();
        let inline: Vec<_> = r
            .dom
            .select(&sel(&format!(
                "article[data-item=\"{id}\"] figure.chart svg"
            )))
            .collect();
        assert_eq!(inline.len(), svgs.len(), "{id}: every chart inline");
        for svg in inline {
            for dim in ["width", "height"] {
                let v: f64 = svg.value().attr(dim).unwrap().parse().unwrap();
                assert!(v > 0.0, "{id}: chart {dim} {v}");
            }
            let first: String = svg.select(&sel("text")).next().unwrap().text().collect();
            let first: String = first.split_whitespace().collect();
            assert!(
                squeezed.contains(&first),
                "{id}: chart text {first:?} not printed"
            );
            charts += 1;
        }
    }
    charts
}

fn paper_checklist(dir: &Path, broker: &PaperBroker) -> PathBuf {
    write(
        dir,
        "checklist.toml",
        &format!(
            r#"[checklist]
name = "Paper <broker> & friends"
system = "paper-broker"
environment = "test"
signoff = ["Technical lead"]

[[item]]
id = "order-latency"
section = "Performance"
title = "Order latency p99 below 2 s"
severity = "blocker"
[item.probe]
kind = "latency"
url = "http://{addr}/api/v1/orders"
method = "POST"
body = '{{"symbol":"NIFTY","side":"buy","qty":1,"type":"market","client_order_id":"{{{{seq}}}}"}}'
rate = 100
count = 300
min_samples = 200
p99 = "2s"

[[item]]
id = "health"
section = "Availability"
title = "Health endpoint says <b>ok</b>"
severity = "major"
probe = {{ kind = "http", url = "http://{addr}/healthz", status = 200 }}

[[item]]
id = "reconciliation"
section = "Operations"
title = "Reconciliation job exits 0"
severity = "blocker"
probe = {{ kind = "command", command = ["sh", "-c", "echo '<script>alert(1)</script>'; exit 3"] }}

[[item]]
id = "legacy-adapter"
section = "Operations"
title = "Legacy adapter passes its self-test"
severity = "major"
probe = {{ kind = "command", command = ["false"] }}

[[item]]
id = "unhealthy-drill"
section = "Drills"
title = "Health says 503 while the broker is unhealthy"
severity = "major"
probe = {{ kind = "drill", step = [
  {{ broker_fault = {{ unhealthy = true }}, broker = "http://{addr}" }},
  {{ name = "unhealthy", expect = "http", url = "http://{addr}/healthz", status = 503, within = "5s" }},
] }}

[[waiver]]
item = "legacy-adapter"
reason = "Legacy adapter excluded until the Q1 refactor"
approved_by = "Technical lead"
expires = 2999-01-31
"#,
            addr = broker.addr
        ),
    )
}

#[test]
fn a_failing_run_with_a_waiver_and_a_chart_reads_in_chromium_and_prints() {
    let work = tempfile::tempdir().unwrap();
    let broker = PaperBroker::start(&[]);
    let checklist = paper_checklist(work.path(), &broker);
    let out = work.path().join("out");
    let o = run_in(
        work.path(),
        &[
            "run",
            "--no-step-summary",
            "--out",
            out.to_str().unwrap(),
            checklist.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let report = report_json(&out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_self_contained(&html);

    let r = render(work.path(), &out, "failing-run");
    assert_eq!(texts(&r.dom, "#verdict .verdict strong"), vec!["NOT READY"]);
    assert_eq!(
        texts(&r.dom, "#verdict h1"),
        vec!["Paper <broker> & friends"]
    );
    assert_items(&r, &report);
    assert_eq!(report["items"][3]["outcome"]["status"], "waived");
    assert_eq!(
        report["items"][4]["outcome"]["status"],
        "pass",
        "{}",
        describe(&o)
    );
    // Text from checklists and probes is text, never markup.
    assert_eq!(r.dom.select(&sel("script, b")).count(), 0);
    assert!(
        texts(&r.dom, "#items")
            .join("")
            .contains("<script>alert(1)</script>")
    );
    assert_eq!(
        assert_charts(&r, &report),
        2,
        "the latency and the drill charts"
    );
    // The waiver, with its expiry; nobody signed.
    let waivers = texts(&r.dom, "#waivers tbody tr").join("\n");
    assert!(
        waivers.contains("legacy-adapter")
            && waivers.contains("2999-01-31")
            && waivers.contains("applied"),
        "{waivers}"
    );
    assert!(
        texts(&r.dom, "#signoff tbody tr")
            .join("")
            .contains("not signed")
    );
    assert!(
        r.pages >= 5,
        "each section starts a page: {} pages",
        r.pages
    );
}

/// A passing run of two items with two sign-off roles, signed by alice for "Technical lead"
/// with a fresh ed25519 key; returns the report folder, its report.json and the
/// allowed_signers file that accepts alice for that role.
fn signed_run(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let checklist = write(
        dir,
        "checklist.toml",
        "[checklist]\nname = \"signed run\"\nsystem = \"order-router\"\nenvironment = \"staging\"\n\
         signoff = [\"Technical lead\", \"Security review\"]\n\n\
         [[item]]\nid = \"env-home\"\nsection = \"Config\"\ntitle = \"HOME is set\"\nseverity = \"major\"\n\
         probe = { kind = \"env\", vars = [\"HOME\"] }\n\n\
         [[item]]\nid = \"true-exits-0\"\nsection = \"Tools\"\ntitle = \"A command exits 0\"\nseverity = \"minor\"\n\
         probe = { kind = \"command\", command = [\"true\"] }\n",
    );
    let out = dir.join("out");
    let o = run_in(
        dir,
        &[
            "run",
            "--no-step-summary",
            "--out",
            out.to_str().unwrap(),
            checklist.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let (alice, public) = keygen(dir, "alice", "alice@example.com");
    let signers = write(
        dir,
        "allowed_signers",
        &format!("alice@example.com {public} prodready-roles=\"Technical lead\"\n"),
    );
    let report = out.join("report.json");
    let o = run_in(
        dir,
        &[
            "sign",
            report.to_str().unwrap(),
            "--role",
            "Technical lead",
            "--key",
            alice.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    (out, report, signers)
}

#[test]
fn a_passing_signed_report_shows_who_signed_and_whether_it_verified() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (out, report, signers) = signed_run(dir);

    // `sign` re-renders report.html: signed, but not verified by the page.
    let signed = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_self_contained(&signed);
    let doc = Html::parse_document(&signed);
    let rows = texts(&doc, "#signoff table.signatures tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("Technical lead")
            && rows[0].contains("approve")
            && rows[0].contains("alice@example.com")
            && rows[0].contains("not verified"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("Security review") && rows[1].contains("not signed"),
        "{rows:?}"
    );

    // Written with --allowed-signers, the page shows the verification.
    let o = run_in(
        dir,
        &[
            "report",
            report.to_str().unwrap(),
            "--format",
            "html",
            "--allowed-signers",
            signers.to_str().unwrap(),
            "--output",
            out.join("report.html").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let r = render(dir, &out, "signed-run");
    assert_eq!(texts(&r.dom, "#verdict .verdict strong"), vec!["READY"]);
    assert_items(&r, &report_json(&out));
    let rows = texts(&r.dom, "#signoff table.signatures tbody tr");
    assert!(
        rows[0].contains("verified") && !rows[0].contains("NOT verified"),
        "{rows:?}"
    );
    let checks = texts(&r.dom, "#signoff table.verification tbody tr").join("\n");
    assert!(
        checks.contains("role: Security review") && checks.contains("FAIL"),
        "{checks}"
    );
    assert!(r.pdf_text.contains("alice@example.com"), "{}", r.pdf_text);

    // --allowed-signers is for HTML only.
    let o = run_in(
        dir,
        &[
            "report",
            report.to_str().unwrap(),
            "--format",
            "md",
            "--allowed-signers",
            signers.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
}
