//! No import loops: inside every crate, no two source files use each other,
//! directly or around a cycle. A file "uses" another when it names an item
//! defined there (`use crate::a::B`, `super::b::c()`, `child::f()`); a
//! re-export (`pub use`) is followed to where the item is defined, and `mod`
//! lines and `pub use` lines themselves are structure, not use. Test modules
//! at the end of a file are not counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use dbinit_tests::tree::{rust_files, workspace_root};

type ModPath = Vec<String>;

/// `src/a/b.rs` → `[a, b]`; `lib.rs`, `main.rs` and `mod.rs` name their
/// directory.
fn mod_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("lib" | "main" | "mod")
    ) {
        parts.pop();
    }
    parts
}

/// The code that counts: no trailing test module, no line comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `use` statements: `(is a re-export, the tree after "use")`.
fn use_statements(code: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = find_word(rest, "use") {
        let before = rest[..i].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let Some(end) = rest[i..].find(';') else {
            break;
        };
        out.push((public, rest[i + 3..i + end].trim().to_owned()));
        rest = &rest[i + end..];
    }
    out
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = text[from..].find(word).map(|i| i + from) {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        if !before.is_some_and(is_ident) && after.is_some_and(char::is_whitespace) {
            return Some(i);
        }
        from = i + word.len();
    }
    None
}

/// `a::{b, c::{d, e as f}}` → `[a, b]`, `[a, c, d]`, `[a, c, e]`.
fn expand(prefix: &[String], tree: &str) -> Vec<ModPath> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..]);
    let mut out = Vec::new();
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(open) = part.find("::{").filter(|_| part.ends_with('}')) {
            let mut base = prefix.to_vec();
            base.extend(segments(&part[..open]));
            out.extend(expand(&base, &part[open + 3..part.len() - 1]));
        } else if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            out.extend(expand(prefix, inner));
        } else {
            let name = part.split(" as ").next().unwrap_or(part);
            let mut path = prefix.to_vec();
            path.extend(segments(name));
            out.push(path);
        }
    }
    out
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `crate::`, `self::` and `super::` made absolute from module `at`.
fn absolute(at: &[String], path: &[String]) -> Option<ModPath> {
    match path.first().map(String::as_str) {
        Some("crate") => Some(path[1..].to_vec()),
        Some("self") => Some([at, &path[1..]].concat()),
        Some("super") => {
            let mut base = at.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            Some([&base[..], rest].concat())
        }
        _ => None,
    }
}

/// Every path in `code` written `crate::…`, `super::…` or `child::…`.
fn paths_in(code: &str, children: &BTreeSet<String>) -> Vec<ModPath> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = code.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let starts = is_ident(c) && (i == 0 || !is_ident(chars[i - 1].1) && chars[i - 1].1 != ':');
        if !starts {
            i += 1;
            continue;
        }
        let end = code[at..]
            .find(|ch: char| !(is_ident(ch) || ch == ':'))
            .map_or(code.len(), |n| at + n);
        let text = &code[at..end];
        let path: ModPath = segments(text).collect();
        let first = path.first().map(String::as_str).unwrap_or_default();
        if text.contains("::") && (matches!(first, "crate" | "super") || children.contains(first)) {
            out.push(path);
        }
        while i < chars.len() && chars[i].0 < end {
            i += 1;
        }
    }
    out
}

struct Crate {
    files: BTreeMap<ModPath, String>,
    /// `(module, name)` → the path it re-exports.
    reexports: HashMap<(ModPath, String), ModPath>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut paths = Vec::new();
        rust_files(src, &mut paths);
        let files: BTreeMap<ModPath, String> = paths
            .iter()
            .map(|f| (mod_path(src, f), code(&std::fs::read_to_string(f).unwrap())))
            .collect();
        let mut reexports = HashMap::new();
        for (module, code) in &files {
            for (public, tree) in use_statements(code) {
                if !public {
                    continue;
                }
                for path in expand(&[], &tree) {
                    let target =
                        absolute(module, &path).unwrap_or_else(|| [&module[..], &path].concat());
                    if let Some(name) = path.last() {
                        reexports.insert((module.clone(), name.clone()), target);
                    }
                }
            }
        }
        Crate { files, reexports }
    }

    /// The file that defines what `path` names, following re-exports.
    fn resolve(&self, path: &[String], hops: usize) -> Option<ModPath> {
        (0..=path.len()).rev().find_map(|i| {
            let module = &path[..i];
            if !self.files.contains_key(module) {
                return None;
            }
            match path.get(i) {
                Some(name) if hops < 8 => {
                    match self.reexports.get(&(module.to_vec(), name.clone())) {
                        Some(target) => self.resolve(target, hops + 1),
                        None => Some(module.to_vec()),
                    }
                }
                _ => Some(module.to_vec()),
            }
        })
    }

    fn edges(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (module, code) in &self.files {
            let children: BTreeSet<String> = self
                .files
                .keys()
                .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
                .map(|m| m[module.len()].clone())
                .collect();
            let mut named = Vec::new();
            for (public, tree) in use_statements(code) {
                if !public {
                    named.extend(expand(&[], &tree));
                }
            }
            let rest: String = code
                .split(';')
                .filter(|s| find_word(s, "use").is_none() && find_word(s, "mod").is_none())
                .collect::<Vec<_>>()
                .join(";");
            named.extend(paths_in(&rest, &children));
            for path in named {
                let path = match absolute(module, &path) {
                    Some(p) => p,
                    None if children.contains(&path[0]) => [&module[..], &path].concat(),
                    None => continue,
                };
                if let Some(file) = self.resolve(&path, 0).filter(|f| f != module) {
                    edges.entry(module.clone()).or_default().insert(file);
                }
            }
        }
        edges
    }
}

/// The cycles of `edges` (Tarjan's strongly connected components of more
/// than one file).
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: HashMap<ModPath, usize>,
        low: HashMap<ModPath, usize>,
        stack: Vec<ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &ModPath) {
            let n = self.index.len();
            self.index.insert(v.clone(), n);
            self.low.insert(v.clone(), n);
            self.stack.push(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v.clone(), low);
                } else if self.stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v.clone(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let at = self.stack.iter().position(|m| m == v).unwrap();
                let component = self.stack.split_off(at);
                if component.len() > 1 {
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}

fn crate_sources() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    dirs.extend([
        workspace_root().join("xtask/src"),
        workspace_root().join("tests/src"),
    ]);
    dirs.sort();
    dirs
}

#[test]
fn no_two_files_of_a_crate_use_each_other() {
    let mut found = Vec::new();
    for src in crate_sources() {
        for cycle in cycles(&Crate::read(&src).edges()) {
            let files: Vec<String> = cycle
                .iter()
                .map(|m| {
                    if m.is_empty() {
                        "lib".to_owned()
                    } else {
                        m.join("/")
                    }
                })
                .collect();
            found.push(format!("{}: {}", src.display(), files.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import loops:\n{}", found.join("\n"));
}

#[test]
fn the_checker_sees_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "//! x\nmod a;\nmod b;\npub use a::A;\n").unwrap();
    std::fs::write(
        src.join("a.rs"),
        "//! a\nuse crate::b::helper;\npub struct A;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "//! b\npub fn helper() -> crate::A { crate::A }\n",
    )
    .unwrap();
    let found = cycles_of(src);
    assert_eq!(found.len(), 1, "{found:?}");
    // Breaking the loop is seen too.
    std::fs::write(src.join("b.rs"), "//! b\npub fn helper() {}\n").unwrap();
    assert!(cycles_of(src).is_empty());
}

fn cycles_of(src: &Path) -> Vec<Vec<ModPath>> {
    cycles(&Crate::read(src).edges())
}
