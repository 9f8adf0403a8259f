//! Charts inline: an SVG evidence file is put into the page as markup only when it is a plain
//! relative path in the report folder, its bytes still hash to the SHA-256 the report
//! recorded, and it parses as SVG holding nothing active (no script, no foreignObject, no
//! event handler attribute, no link to anything). Otherwise the page says why and links to
//! the file: a chart is never silently dropped, and a page never runs or fetches anything.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::is_local_path;
use crate::model::Evidence;

/// An SVG evidence file as it can be shown.
#[derive(Debug, PartialEq, Eq)]
pub enum Chart {
    /// Safe to inline: the SVG markup, without any XML declaration.
    Inline(String),
    /// Not inlined, and why (the page links to the file instead).
    Linked(String),
}

/// Load `ev` from the report folder `dir` for inlining.
pub fn load(dir: Option<&Path>, ev: &Evidence) -> Chart {
    let Some(dir) = dir else {
        return Chart::Linked(
            "the report folder was not available when this page was written".into(),
        );
    };
    if !is_local_path(&ev.path) {
        return Chart::Linked("its path is not inside the report folder".into());
    }
    let bytes = match std::fs::read(dir.join(&ev.path)) {
        Ok(b) => b,
        Err(e) => return Chart::Linked(format!("the file could not be read: {e}")),
    };
    let digest = hex::encode(Sha256::digest(&bytes));
    if !digest.eq_ignore_ascii_case(&ev.sha256) {
        return Chart::Linked(format!(
            "the file changed after the run (SHA-256 {digest}, the report recorded {})",
            ev.sha256
        ));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Chart::Linked("the file is not UTF-8 text".into());
    };
    match inert(&text) {
        Ok(start) => Chart::Inline(text[start..].trim_end().to_string()),
        Err(why) => Chart::Linked(why),
    }
}

/// Check that `text` is an SVG document with nothing active in it; returns the byte offset of
/// its root `<svg` element (after any XML declaration or comment).
fn inert(text: &str) -> Result<usize, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not well-formed SVG: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" {
        return Err(format!(
            "its root element is <{}>, not <svg>",
            root.tag_name().name()
        ));
    }
    for node in doc.descendants().filter(roxmltree::Node::is_element) {
        let name = node.tag_name().name().to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "script"
                | "foreignobject"
                | "iframe"
                | "object"
                | "embed"
                | "image"
                | "use"
                | "a"
                | "style"
        ) {
            return Err(format!("it holds a <{name}> element"));
        }
        for a in node.attributes() {
            let an = a.name().to_ascii_lowercase();
            if an.starts_with("on") || an == "href" || a.value().contains("url(") {
                return Err(format!("it holds an active attribute ({an})"));
            }
        }
    }
    Ok(root.range().start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(path: &str, bytes: &[u8]) -> Evidence {
        Evidence {
            label: "chart".into(),
            path: path.into(),
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
            media_type: "image/svg+xml".into(),
        }
    }

    #[test]
    fn a_recorded_plain_svg_is_inlined_and_anything_else_is_linked() {
        let dir = tempfile::tempdir().unwrap();
        let plain = b"<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"5\" xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"3\" height=\"2\"/></svg>\n";
        std::fs::write(dir.path().join("a.svg"), plain).unwrap();
        match load(Some(dir.path()), &ev("a.svg", plain)) {
            Chart::Inline(s) => assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}"),
            other => panic!("{other:?}"),
        }
        // Changed after the run: the digest no longer matches.
        let mut changed = ev("a.svg", plain);
        changed.sha256 = "00".repeat(32);
        assert!(
            matches!(load(Some(dir.path()), &changed), Chart::Linked(m) if m.contains("changed after the run"))
        );
        // Active content is never inlined.
        for active in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:x=\"http://www.w3.org/1999/xlink\"><image x:href=\"https://example.com/a.png\"/></svg>",
            b"<html/>",
        ] {
            std::fs::write(dir.path().join("b.svg"), active).unwrap();
            let got = load(Some(dir.path()), &ev("b.svg", active));
            assert!(matches!(got, Chart::Linked(_)), "{got:?}");
        }
        assert!(matches!(load(None, &ev("a.svg", plain)), Chart::Linked(_)));
        assert!(matches!(
            load(Some(dir.path()), &ev("../a.svg", plain)),
            Chart::Linked(_)
        ));
    }
}
