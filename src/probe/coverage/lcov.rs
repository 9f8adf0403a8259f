//! LCOV tracefiles, as specified in `geninfo(1)` ("FILES" section) of lcov 1.x and 2.x.
//!
//! Records between `SF:<path>` and `end_of_record`:
//! - lines: `DA:<line>,<count>[,<checksum>]`, summary `LF`/`LH`;
//! - functions, lcov 1.x: `FN:<line>[,<end line>],<name>` and `FNDA:<count>,<name>`;
//!   lcov 2.2+: `FNL:<index>,<line>[,<end line>]` and `FNA:<index>,<count>,<name>`; summary
//!   `FNF`/`FNH`;
//! - branches: `BRDA:<line>,[e]<block>,<branch>,<taken>` where `taken` is `-` when the block
//!   never ran (counted as not taken); summary `BRF`/`BRH`.
//!
//! Counting follows lcov's own `--summary`: a line, function (by name, or by index for `FNL`)
//! or branch `(line, block, branch)` is counted once per file even when records repeat, and
//! records for the same `SF` are merged. The detail records win over the `LF`/`LH`-style
//! summaries; the summaries are used only when a record has no details. A record without
//! `end_of_record` means the file was truncated.

use std::collections::{BTreeMap, HashMap};

use super::data::{Counts, CoverageData, FileCoverage, Format, ParseError};

#[derive(Default)]
struct Record {
    path: String,
    lines: BTreeMap<u64, u64>,
    fn_by_name: HashMap<String, u64>,
    fnl: HashMap<String, u64>,
    branches: HashMap<(u64, String, String), u64>,
    lf_lh: Option<(u64, u64)>,
    fnf_fnh: Option<(u64, u64)>,
    brf_brh: Option<(u64, u64)>,
    saw_branch_records: bool,
    saw_function_records: bool,
}

impl Record {
    fn merge(&mut self, other: Record) {
        for (l, c) in other.lines {
            *self.lines.entry(l).or_default() += c;
        }
        for (n, c) in other.fn_by_name {
            *self.fn_by_name.entry(n).or_default() += c;
        }
        for (n, c) in other.fnl {
            *self.fnl.entry(n).or_default() += c;
        }
        for (k, c) in other.branches {
            *self.branches.entry(k).or_default() += c;
        }
        let add = |a: Option<(u64, u64)>, b: Option<(u64, u64)>| match (a, b) {
            (Some(x), Some(y)) => Some((x.0 + y.0, x.1 + y.1)),
            (x, y) => x.or(y),
        };
        self.lf_lh = add(self.lf_lh, other.lf_lh);
        self.fnf_fnh = add(self.fnf_fnh, other.fnf_fnh);
        self.brf_brh = add(self.brf_brh, other.brf_brh);
        self.saw_branch_records |= other.saw_branch_records;
        self.saw_function_records |= other.saw_function_records;
    }

    fn into_file(self) -> FileCoverage {
        let count = |it: &mut dyn Iterator<Item = u64>| {
            let mut c = Counts::default();
            for v in it {
                c.found += 1;
                if v > 0 {
                    c.hit += 1;
                }
            }
            c
        };
        let lines = if self.lines.is_empty() {
            self.lf_lh
                .map(|(f, h)| Counts { found: f, hit: h })
                .unwrap_or_default()
        } else {
            count(&mut self.lines.values().copied())
        };
        let functions = if !self.fnl.is_empty() || !self.fn_by_name.is_empty() {
            let mut c = count(&mut self.fnl.values().copied());
            c.add(count(&mut self.fn_by_name.values().copied()));
            Some(c)
        } else {
            self.fnf_fnh.map(|(f, h)| Counts { found: f, hit: h })
        };
        let branches = if !self.branches.is_empty() {
            Some(count(&mut self.branches.values().copied()))
        } else {
            self.brf_brh.map(|(f, h)| Counts { found: f, hit: h })
        };
        FileCoverage {
            path: self.path,
            lines,
            branches,
            functions,
        }
    }
}

fn num(line: usize, what: &str, text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    // gcov can report negative counts for some lines; lcov treats them as 0.
    if let Some(rest) = t.strip_prefix('-')
        && rest.parse::<u64>().is_ok()
    {
        return Ok(0);
    }
    t.parse::<u64>().map_err(|_| {
        ParseError::at_line(
            line,
            format!("{what}: expected a whole number, found \"{t}\""),
        )
    })
}

/// Parse an LCOV tracefile.
///
/// # Errors
/// A [`ParseError`] with the 1-based line for a malformed record, a record outside `SF` …
/// `end_of_record`, a truncated final record, or a file with no `SF` record at all.
pub fn parse(text: &str) -> Result<CoverageData, ParseError> {
    let last = text.lines().count();
    parse_records(text).map_err(|mut e| {
        // A record cut in the middle is the usual shape of a truncated file: say so.
        if e.at == format!("line {last}") && !text.ends_with('\n') {
            e.message = format!(
                "truncated report (its last line is incomplete): {}",
                e.message
            );
        }
        e
    })
}

impl Record {
    /// Apply one record line (`key:value`, line `n`) of the block for this file.
    fn apply(&mut self, n: usize, key: &str, value: &str) -> Result<(), ParseError> {
        match key {
            "DA" | "LF" | "LH" => self.apply_line(n, key, value),
            "FN" | "FNDA" | "FNL" | "FNA" | "FNF" | "FNH" => self.apply_function(n, key, value),
            "BRDA" | "BRF" | "BRH" => self.apply_branch(n, key, value),
            // MC/DC (lcov 2.2 `MCDC`), line checksums and other newer records are not measured.
            _ => Ok(()),
        }
    }

    /// `DA`, `LF`, `LH`.
    fn apply_line(&mut self, n: usize, key: &str, value: &str) -> Result<(), ParseError> {
        let parts: Vec<&str> = value.split(',').collect();
        match key {
            "DA" => {
                if parts.len() < 2 {
                    return Err(ParseError::at_line(
                        n,
                        "DA record: expected DA:<line>,<count>",
                    ));
                }
                let l = num(n, "DA line number", parts[0])?;
                let c = num(n, "DA execution count", parts[1])?;
                *self.lines.entry(l).or_default() += c;
            }
            "LF" => {
                let f = num(n, "LF", value)?;
                self.lf_lh = Some((f, self.lf_lh.map_or(0, |x| x.1)));
            }
            "LH" => {
                let h = num(n, "LH", value)?;
                self.lf_lh = Some((self.lf_lh.map_or(0, |x| x.0), h));
            }
            _ => {}
        }
        Ok(())
    }

    /// `FN`, `FNDA`, `FNL`, `FNA`, `FNF`, `FNH` (lcov 1.x and 2.x function records).
    fn apply_function(&mut self, n: usize, key: &str, value: &str) -> Result<(), ParseError> {
        let parts: Vec<&str> = value.split(',').collect();
        match key {
            "FN" => {
                // FN:<line>,<name> (1.x) or FN:<line>,<end line>,<name> (2.x). Names may contain
                // commas (C++ signatures), so split at most twice and keep the rest whole.
                self.saw_function_records = true;
                let mut it = value.splitn(3, ',');
                let start = it.next().unwrap_or("");
                num(n, "FN line number", start)?;
                let second = it.next().ok_or_else(|| {
                    ParseError::at_line(n, "FN record: expected FN:<line>,<name>")
                })?;
                let name = match it.next() {
                    Some(rest) if second.trim().parse::<u64>().is_ok() => rest,
                    _ => &value[start.len() + 1..],
                };
                self.fn_by_name.entry(name.to_string()).or_default();
            }
            "FNDA" => {
                self.saw_function_records = true;
                let (c, name) = value.split_once(',').ok_or_else(|| {
                    ParseError::at_line(n, "FNDA record: expected FNDA:<count>,<name>")
                })?;
                let c = num(n, "FNDA execution count", c)?;
                *self.fn_by_name.entry(name.to_string()).or_default() += c;
            }
            "FNL" => {
                self.saw_function_records = true;
                if parts.len() < 2 {
                    return Err(ParseError::at_line(
                        n,
                        "FNL record: expected FNL:<index>,<line>[,<end line>]",
                    ));
                }
                num(n, "FNL index", parts[0])?;
                num(n, "FNL line number", parts[1])?;
                self.fnl.entry(parts[0].trim().to_string()).or_default();
            }
            "FNA" => {
                self.saw_function_records = true;
                let mut it = value.splitn(3, ',');
                let (Some(idx), Some(c), Some(_name)) = (it.next(), it.next(), it.next()) else {
                    return Err(ParseError::at_line(
                        n,
                        "FNA record: expected FNA:<index>,<count>,<name>",
                    ));
                };
                num(n, "FNA index", idx)?;
                let c = num(n, "FNA execution count", c)?;
                *self.fnl.entry(idx.trim().to_string()).or_default() += c;
            }
            "FNF" => {
                self.saw_function_records = true;
                let f = num(n, "FNF", value)?;
                self.fnf_fnh = Some((f, self.fnf_fnh.map_or(0, |x| x.1)));
            }
            "FNH" => {
                let h = num(n, "FNH", value)?;
                self.fnf_fnh = Some((self.fnf_fnh.map_or(0, |x| x.0), h));
            }
            _ => {}
        }
        Ok(())
    }

    /// `BRDA`, `BRF`, `BRH`.
    fn apply_branch(&mut self, n: usize, key: &str, value: &str) -> Result<(), ParseError> {
        let parts: Vec<&str> = value.split(',').collect();
        match key {
            "BRDA" => {
                self.saw_branch_records = true;
                // BRDA:<line>,[e]<block>,<branch>,<taken>; in 2.x <branch> may be an expression
                // containing commas, so the line is the first field and taken the last.
                if parts.len() < 4 {
                    return Err(ParseError::at_line(
                        n,
                        "BRDA record: expected BRDA:<line>,<block>,<branch>,<taken>",
                    ));
                }
                let l = num(n, "BRDA line number", parts[0])?;
                let taken_text = parts[parts.len() - 1].trim();
                let taken = if taken_text == "-" {
                    0
                } else {
                    num(n, "BRDA taken count", taken_text)?
                };
                let block = parts[1].trim().to_string();
                let branch = parts[2..parts.len() - 1].join(",");
                *self.branches.entry((l, block, branch)).or_default() += taken;
            }
            "BRF" => {
                self.saw_branch_records = true;
                let f = num(n, "BRF", value)?;
                self.brf_brh = Some((f, self.brf_brh.map_or(0, |x| x.1)));
            }
            "BRH" => {
                let h = num(n, "BRH", value)?;
                self.brf_brh = Some((self.brf_brh.map_or(0, |x| x.0), h));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The records read so far, one per file (records for the same file merged).
#[derive(Default)]
struct Records {
    files: Vec<Record>,
    index: HashMap<String, usize>,
    has_branches: bool,
    has_functions: bool,
}

impl Records {
    /// Add a finished record, merging it into an earlier one for the same file.
    fn add(&mut self, rec: Record) {
        self.has_branches |= rec.saw_branch_records;
        self.has_functions |= rec.saw_function_records;
        match self.index.get(&rec.path) {
            Some(&k) => self.files[k].merge(rec),
            None => {
                self.index.insert(rec.path.clone(), self.files.len());
                self.files.push(rec);
            }
        }
    }

    /// The coverage data of the whole tracefile; an error when it holds no record.
    fn into_data(self) -> Result<CoverageData, ParseError> {
        if self.files.is_empty() {
            return Err(ParseError::whole(
                "no SF records: this is not an LCOV tracefile, or it is empty",
            ));
        }
        Ok(CoverageData {
            format: Format::Lcov,
            files: self.files.into_iter().map(Record::into_file).collect(),
            has_branches: self.has_branches,
            has_functions: self.has_functions,
        })
    }
}

/// A new record for the `SF` record at line `n`; an error while `cur` is still open.
fn start_record(
    cur: Option<&(usize, Record)>,
    n: usize,
    path: &str,
) -> Result<(usize, Record), ParseError> {
    if let Some((start, rec)) = cur {
        return Err(ParseError::at_line(
            n,
            format!(
                "SF record while the record for \"{}\" (line {start}) has no end_of_record",
                rec.path
            ),
        ));
    }
    Ok((
        n,
        Record {
            path: path.to_string(),
            ..Record::default()
        },
    ))
}

fn parse_records(text: &str) -> Result<CoverageData, ParseError> {
    let mut records = Records::default();
    let mut cur: Option<(usize, Record)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "end_of_record" {
            let Some((_, rec)) = cur.take() else {
                return Err(ParseError::at_line(
                    n,
                    "end_of_record without a preceding SF record",
                ));
            };
            records.add(rec);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(ParseError::at_line(
                n,
                format!(
                    "not an LCOV record: \"{}\"",
                    line.chars().take(60).collect::<String>()
                ),
            ));
        };
        match key {
            "TN" | "VER" => continue,
            "SF" => {
                cur = Some(start_record(cur.as_ref(), n, value)?);
                continue;
            }
            _ => {}
        }
        let Some((_, rec)) = cur.as_mut() else {
            return Err(ParseError::at_line(
                n,
                format!("{key} record outside an SF … end_of_record block"),
            ));
        };
        rec.apply(n, key, value)?;
    }
    if let Some((start, rec)) = cur {
        return Err(ParseError::at_line(
            start,
            format!(
                "truncated report: the record for \"{}\" that starts here has no end_of_record",
                rec.path
            ),
        ));
    }
    records.into_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brda_dash_counts_as_not_taken_and_duplicates_count_once() {
        let t = "SF:a.c\nDA:1,1\nDA:2,0\nDA:1,3\nBRDA:1,0,0,1\nBRDA:1,0,1,-\nBRDA:1,0,1,0\nend_of_record\n";
        let d = parse(t).unwrap();
        assert_eq!(d.files[0].lines, Counts { found: 2, hit: 1 });
        assert_eq!(d.files[0].branches, Some(Counts { found: 2, hit: 1 }));
    }

    #[test]
    fn missing_end_of_record_is_a_truncation_error_with_the_line() {
        let e = parse("TN:\nSF:a.c\nDA:1,1\n").unwrap_err();
        assert_eq!(e.at, "line 2");
        assert!(e.message.contains("truncated"), "{e:?}");
    }

    #[test]
    fn malformed_da_names_the_line() {
        let e = parse("SF:a.c\nDA:1\nend_of_record\n").unwrap_err();
        assert_eq!(e.at, "line 2");
    }
}

#[cfg(test)]
mod lcov2_tests {
    use super::*;

    /// Hand-written in the lcov 2.2+ `FNL`/`FNA` shape documented in geninfo(1) ("FNL:<index>,
    /// <line>[,<end line>]", "FNA:<index>,<count>,<name>"): Debian 12 ships lcov 1.16, so no
    /// real 2.x tracefile could be made here. Aliases (several FNA per index) are one function.
    #[test]
    fn fnl_fna_records_count_functions_by_index() {
        let t = "TN:\nSF:orders.c\nFNL:0,5,10\nFNA:0,1,notional_ok\nFNL:1,12,21\nFNA:1,0,side_name\nFNA:1,0,side_name_alias\nFNF:2\nFNH:1\nDA:5,1\nDA:12,0\nLF:2\nLH:1\nBRDA:6,e0,0,1\nBRDA:6,e0,1,-\nBRF:2\nBRH:1\nend_of_record\n";
        let d = parse(t).unwrap();
        assert_eq!(d.files[0].functions, Some(Counts { found: 2, hit: 1 }));
        assert_eq!(d.files[0].branches, Some(Counts { found: 2, hit: 1 }));
        assert_eq!(d.files[0].lines, Counts { found: 2, hit: 1 });
    }

    #[test]
    fn summaries_are_used_only_without_details() {
        let d = parse("SF:a.c\nLF:10\nLH:7\nFNF:3\nFNH:2\nend_of_record\n").unwrap();
        assert_eq!(d.files[0].lines, Counts { found: 10, hit: 7 });
        assert_eq!(d.files[0].functions, Some(Counts { found: 3, hit: 2 }));
    }

    #[test]
    fn records_for_the_same_file_merge_like_lcov_summary() {
        let d =
            parse("SF:a.c\nDA:1,0\nDA:2,1\nend_of_record\nSF:a.c\nDA:1,2\nDA:3,0\nend_of_record\n")
                .unwrap();
        assert_eq!(d.files.len(), 1);
        assert_eq!(d.files[0].lines, Counts { found: 3, hit: 2 });
    }
}
