//! Request templates: `{{seq}}`, `{{uuid}}`, `{{now_ms}}`, `{{rand_int lo hi}}` and
//! `{{choice a b c}}` placeholders in the request body and URL path.
//!
//! A template is parsed once at validation (so a typo is a checklist error naming the key) and
//! rendered per request into a reused buffer. Random values come from a per-connection
//! SplitMix64 generator seeded from the probe's seed, so runs are reproducible.

use std::fmt::Write;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// The request's sequence number (0-based, warm-up included).
    Seq,
    /// A random RFC 9562 version-4 UUID.
    Uuid,
    /// Wall-clock milliseconds since the Unix epoch at render time.
    NowMs,
    /// A uniform integer in `lo..=hi`.
    RandInt(i64, i64),
    /// One of the words, uniformly.
    Choice(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parse `text`.
    ///
    /// # Errors
    /// A message naming the bad placeholder and listing the known ones.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed placeholder \"{{{{{after}\""))?;
            let inner = after[..close].trim();
            let words: Vec<&str> = inner.split_whitespace().collect();
            let part = match words.as_slice() {
                ["seq"] => Part::Seq,
                ["uuid"] => Part::Uuid,
                ["now_ms"] => Part::NowMs,
                ["rand_int", lo, hi] => {
                    let lo: i64 = lo
                        .parse()
                        .map_err(|_| format!("{{{{{inner}}}}}: \"{lo}\" is not an integer"))?;
                    let hi: i64 = hi
                        .parse()
                        .map_err(|_| format!("{{{{{inner}}}}}: \"{hi}\" is not an integer"))?;
                    if lo > hi {
                        return Err(format!("{{{{{inner}}}}}: lo must not exceed hi"));
                    }
                    Part::RandInt(lo, hi)
                }
                ["choice", items @ ..] if !items.is_empty() => {
                    Part::Choice(items.iter().map(|s| s.to_string()).collect())
                }
                _ => {
                    return Err(format!(
                        "unknown placeholder {{{{{inner}}}}} (expected one of: {{{{seq}}}}, {{{{uuid}}}}, {{{{now_ms}}}}, {{{{rand_int LO HI}}}}, {{{{choice A B ...}}}})"
                    ));
                }
            };
            parts.push(part);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// True when rendering always gives the same text.
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Render into `out` (cleared first) for request number `seq`.
    pub fn render(&self, seq: u64, rng: &mut Rng, out: &mut String) {
        out.clear();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Part::Uuid => {
                    let hi = rng.next_u64();
                    let lo = rng.next_u64();
                    let hi = (hi & !0xf000) | 0x4000; // version 4
                    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC variant
                    let _ = write!(
                        out,
                        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                        hi >> 32,
                        (hi >> 16) & 0xffff,
                        hi & 0xffff,
                        lo >> 48,
                        lo & 0xffff_ffff_ffff
                    );
                }
                Part::NowMs => {
                    let ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0);
                    let _ = write!(out, "{ms}");
                }
                Part::RandInt(lo, hi) => {
                    let span = (*hi as i128 - *lo as i128 + 1) as u128;
                    let v = *lo as i128 + (u128::from(rng.next_u64()) % span) as i128;
                    let _ = write!(out, "{v}");
                }
                Part::Choice(items) => {
                    let i = (rng.next_u64() % items.len() as u64) as usize;
                    out.push_str(&items[i]);
                }
            }
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast and seedable; not for cryptography. The
/// one random generator of the crate: templates, the paper broker's fault draws and the fault
/// proxy's jitter all use it.
#[derive(Debug, Default, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_per_request() {
        let t = Template::parse(
            r#"{"id":"{{seq}}","u":"{{ uuid }}","q":{{rand_int 1 3}},"s":"{{choice buy sell}}","t":{{now_ms}}}"#,
        )
        .unwrap();
        let mut rng = Rng::new(7);
        let mut out = String::new();
        t.render(41, &mut rng, &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["id"], "41");
        let u = v["u"].as_str().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert!((1..=3).contains(&v["q"].as_i64().unwrap()));
        assert!(matches!(v["s"].as_str().unwrap(), "buy" | "sell"));
        assert!(v["t"].as_u64().unwrap() > 1_600_000_000_000);
        assert!(!t.is_constant());
    }

    #[test]
    fn unknown_or_malformed_placeholders_are_errors() {
        assert!(
            Template::parse("{{sequence}}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(Template::parse("{{rand_int 5 1}}").is_err());
        assert!(Template::parse("{{rand_int a 1}}").is_err());
        assert!(Template::parse("{{seq").unwrap_err().contains("unclosed"));
        assert!(Template::parse("plain").unwrap().is_constant());
    }

    #[test]
    fn unit_draws_stay_in_range() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let u = r.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
