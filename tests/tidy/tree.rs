//! Reading src/ for the tidy checks: every file's module, its text with comments and literals
//! blanked out, the module paths it uses (resolved through re-exports to the module that
//! defines the item), and the import graph of every folder with its cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub type ModPath = Vec<String>;

/// Where a module path is used: file, line and the path as written.
#[derive(Debug, Clone)]
pub struct Use {
    pub file: String,
    pub line: usize,
    pub path: String,
}

/// One source file: its module and its text with comments and literals blanked out.
pub struct Source {
    pub file: String,
    pub module: ModPath,
    pub code: String,
}

/// What a module re-exports: names to absolute paths, and glob targets.
#[derive(Default)]
struct Exports {
    named: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

pub struct Tree {
    pub sources: Vec<Source>,
    pub modules: BTreeSet<ModPath>,
    exports: BTreeMap<ModPath, Exports>,
    code_of: BTreeMap<ModPath, usize>,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module a file under src/ defines: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`,
/// `src/lib.rs` the crate root. `src/main.rs` is the binary, not a module of the library.
fn module_of(rel: &Path) -> Option<ModPath> {
    let mut parts: Vec<String> = rel
        .iter()
        .skip(1)
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match (parts.is_empty(), stem) {
        (true, "main") => None,
        (true, "lib") => Some(parts),
        (_, "mod") => Some(parts),
        _ => {
            parts.push(stem.to_string());
            Some(parts)
        }
    }
}

/// `text` with comments, string literals and character literals replaced by spaces (newlines
/// kept, so offsets and line numbers stay those of the file).
pub fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (rest.starts_with(b"r#") || rest.starts_with(b"r\"") || rest.starts_with(b"br"))
            && (i == 0 || !ident(b[i - 1]))
            && raw_string_end(b, i).is_some()
        {
            let end = raw_string_end(b, i).unwrap_or(b.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{1F600}'), or a lifetime ('a), kept.
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter()
                    .skip(3)
                    .position(|&c| c == b'\'')
                    .map(|n| i + n + 4)
            } else {
                let len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + len) == Some(&b'\'')).then_some(i + len + 2)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The end of a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) starting at `i`.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + if b[i] == b'b' { 2 } else { 1 };
    if b.get(j - 1) != Some(&b'r') {
        return None;
    }
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if b.get(j) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"')
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let body = &b[j + 1..];
    let n = body.windows(close.len()).position(|w| w == close)?;
    Some(j + 1 + n + close.len())
}

/// A use tree (`crate::a::{b, c::D as E, self}`) as (path, name it binds, glob).
pub fn expand_use(tree: &str) -> Vec<(Vec<String>, Option<String>, bool)> {
    let tokens: Vec<String> = regex::Regex::new(r"::|[{},*]|[A-Za-z_][A-Za-z0-9_]*")
        .unwrap()
        .find_iter(tree)
        .map(|m| m.as_str().to_string())
        .collect();
    let mut out = Vec::new();
    let mut pos = 0;
    use_tree(&tokens, &mut pos, Vec::new(), &mut out);
    out
}

fn use_tree(
    t: &[String],
    pos: &mut usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, bool)>,
) {
    while *pos < t.len() {
        let tok = t[*pos].as_str();
        *pos += 1;
        match tok {
            "::" => {}
            "*" => {
                out.push((prefix, None, true));
                return;
            }
            "{" => loop {
                use_tree(t, pos, prefix.clone(), out);
                match t.get(*pos).map(String::as_str) {
                    Some(",") => *pos += 1,
                    Some("}") => {
                        *pos += 1;
                        return;
                    }
                    _ => return,
                }
                if t.get(*pos).map(String::as_str) == Some("}") {
                    *pos += 1;
                    return;
                }
            },
            "}" | "," => {
                *pos -= 1;
                return;
            }
            name => {
                if name != "self" || prefix.is_empty() {
                    prefix.push(name.to_string());
                }
                if t.get(*pos).map(String::as_str) == Some("as") {
                    let alias = t.get(*pos + 1).cloned();
                    *pos += 2;
                    out.push((prefix, alias, false));
                    return;
                }
                if t.get(*pos).map(String::as_str) != Some("::") {
                    let name = prefix.last().cloned();
                    out.push((prefix, name, false));
                    return;
                }
            }
        }
    }
}

impl Tree {
    pub fn load() -> Tree {
        let root = root();
        let mut files = Vec::new();
        rust_files(&root.join("src"), &mut files);
        let mut sources = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&root).unwrap().to_path_buf();
            let Some(module) = module_of(&rel) else {
                continue;
            };
            let text = std::fs::read_to_string(&f).unwrap();
            sources.push(Source {
                file: rel.display().to_string(),
                module,
                code: strip(&text),
            });
        }
        let modules = sources.iter().map(|s| s.module.clone()).collect();
        let code_of = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.module.clone(), i))
            .collect();
        let mut tree = Tree {
            sources,
            modules,
            exports: BTreeMap::new(),
            code_of,
        };
        let mut exports: BTreeMap<ModPath, Exports> = BTreeMap::new();
        let re = regex::Regex::new(r"\bpub(?:\s*\([^)]*\))?\s+use\s+([^;]+);").unwrap();
        for s in &tree.sources {
            for c in re.captures_iter(&s.code) {
                for (path, name, glob) in expand_use(&c[1]) {
                    let Some(abs) = tree.absolute(&s.module, &path) else {
                        continue;
                    };
                    let e = exports.entry(s.module.clone()).or_default();
                    match (glob, name) {
                        (true, _) => e.globs.push(abs),
                        (false, Some(name)) => {
                            e.named.insert(name, abs);
                        }
                        (false, None) => {}
                    }
                }
            }
        }
        tree.exports = exports;
        tree
    }

    /// `path` as written in `module`, made absolute; `None` for an external crate's path.
    fn absolute(&self, module: &ModPath, path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        match first.as_str() {
            "crate" => Some(rest.to_vec()),
            "self" => Some([module.clone(), rest.to_vec()].concat()),
            "super" => {
                let mut base = module.clone();
                base.pop();
                let mut rest = rest;
                while let Some((s, r)) = rest.split_first()
                    && s == "super"
                {
                    base.pop();
                    rest = r;
                }
                Some([base, rest.to_vec()].concat())
            }
            child => {
                let mut m = module.clone();
                m.push(child.to_string());
                self.modules
                    .contains(&m)
                    .then(|| [module.clone(), path.to_vec()].concat())
            }
        }
    }

    /// The module that defines what an absolute path names, following re-exports.
    fn resolve(&self, path: &[String], depth: usize) -> ModPath {
        let mut m: ModPath = Vec::new();
        for (i, seg) in path.iter().enumerate() {
            let mut next = m.clone();
            next.push(seg.clone());
            if self.modules.contains(&next) {
                m = next;
                continue;
            }
            if depth < 8
                && let Some(target) = self.reexport(&m, seg, depth)
            {
                return self.resolve(&[target, path[i + 1..].to_vec()].concat(), depth + 1);
            }
            return m;
        }
        m
    }

    /// Where module `m` gets the `name` it re-exports, if it does.
    fn reexport(&self, m: &ModPath, name: &str, depth: usize) -> Option<Vec<String>> {
        let e = self.exports.get(m)?;
        if let Some(t) = e.named.get(name) {
            return Some(t.clone());
        }
        e.globs.iter().find_map(|g| {
            let gm = self.resolve(g, depth + 1);
            self.defines(&gm, name)
                .then(|| [gm, vec![name.to_string()]].concat())
        })
    }

    /// Whether module `m` defines or re-exports an item called `name`.
    fn defines(&self, m: &ModPath, name: &str) -> bool {
        let Some(&i) = self.code_of.get(m) else {
            return false;
        };
        let item = regex::Regex::new(&format!(
            r"\b(?:fn|struct|enum|trait|type|const|static|union|mod)\s+{name}\b|macro_rules!\s*{name}\b"
        ))
        .unwrap();
        item.is_match(&self.sources[i].code)
            || self
                .exports
                .get(m)
                .is_some_and(|e| e.named.contains_key(name))
    }

    /// Every module path each file uses, resolved to the module that defines it.
    fn uses(&self) -> Vec<(ModPath, ModPath, Use)> {
        let use_re = regex::Regex::new(r"\buse\s+([^;]+);").unwrap();
        let path_re =
            regex::Regex::new(r"\b(?:crate|super)(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+").unwrap();
        let mut out = Vec::new();
        for s in &self.sources {
            let mut found: Vec<(usize, Vec<String>, String)> = Vec::new();
            for c in use_re.captures_iter(&s.code) {
                let at = c.get(1).unwrap().start();
                for (path, _, _) in expand_use(&c[1]) {
                    let shown = path.join("::");
                    found.push((at, path, shown));
                }
            }
            for m in path_re.find_iter(&s.code) {
                let path: Vec<String> = m
                    .as_str()
                    .split("::")
                    .map(|p| p.trim().to_string())
                    .collect();
                found.push((m.start(), path, m.as_str().to_string()));
            }
            for (at, path, shown) in found {
                let Some(abs) = self.absolute(&s.module, &path) else {
                    continue;
                };
                let target = self.resolve(&abs, 0);
                let line = s.code[..at].matches('\n').count() + 1;
                out.push((
                    s.module.clone(),
                    target,
                    Use {
                        file: s.file.clone(),
                        line,
                        path: shown,
                    },
                ));
            }
        }
        out
    }

    /// The import graph of every folder: folder → (from, to) → the first use that makes it.
    pub fn graphs(&self) -> BTreeMap<ModPath, BTreeMap<(String, String), Use>> {
        let mut graphs: BTreeMap<ModPath, BTreeMap<(String, String), Use>> = BTreeMap::new();
        for (from, to, u) in self.uses() {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                graphs
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry((from[common].clone(), to[common].clone()))
                    .or_insert(u);
            }
        }
        graphs
    }
}

/// The strongly connected components of more than one node (Tarjan).
pub fn cycles(edges: &BTreeMap<(String, String), Use>) -> Vec<BTreeSet<String>> {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default();
    }
    struct State<'a> {
        adj: &'a BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for &w in &s.adj[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        adj: &adj,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in adj.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// One cycle through a strongly connected component, as `a -> b -> a` with the use behind
/// each step.
pub fn describe_cycle(comp: &BTreeSet<String>, edges: &BTreeMap<(String, String), Use>) -> String {
    let start = comp.iter().next().unwrap().clone();
    // Breadth-first from `start` inside the component, back to `start`.
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    let mut last = None;
    'search: while let Some(v) = queue.pop_front() {
        for ((a, b), _) in edges.range((v.clone(), String::new())..) {
            if *a != v {
                break;
            }
            if !comp.contains(b) {
                continue;
            }
            if *b == start {
                last = Some(v.clone());
                break 'search;
            }
            if !prev.contains_key(b) {
                prev.insert(b.clone(), v.clone());
                queue.push_back(b.clone());
            }
        }
    }
    let mut path = vec![start.clone()];
    let mut v = last.expect("a component has a cycle through each node");
    while v != start {
        path.push(v.clone());
        v = prev[&v].clone();
    }
    path.push(start.clone());
    let n = path.len();
    path[1..n - 1].reverse();
    let mut text = path.join(" -> ");
    for w in path.windows(2) {
        let u = &edges[&(w[0].clone(), w[1].clone())];
        text.push_str(&format!(
            "\n    {} -> {}: {}:{} {}",
            w[0], w[1], u.file, u.line, u.path
        ));
    }
    text
}

pub fn folder_name(folder: &ModPath) -> String {
    if folder.is_empty() {
        "src/".to_string()
    } else {
        format!("src/{}/", folder.join("/"))
    }
}
