//! Splitting a mongo-tools command line into flags and positional arguments, with the
//! spellings mongo-tools accepts: `--name value`, `--name=value`, `-n value`, `-nvalue`,
//! `-vvv`, `--archive` alone or `--archive=FILE`, and `--` before positional arguments.

use super::CompatError;
use super::flags::{self, Arity, Flag, Status, Tool};

/// A parsed command line.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Flags in the order given, with their values (`None` for switches).
    pub flags: Vec<(&'static Flag, Option<String>)>,
    /// Positional arguments.
    pub positionals: Vec<String>,
    /// The verbosity level (`-v` counts one, `-vvv` three, `--verbose=N` N).
    pub verbosity: u32,
    /// Every flag name asked about, so a test can prove that no accepted flag is ignored.
    asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Parsed {
    fn ask(&self, long: &str) {
        self.asked.borrow_mut().insert(long.to_string());
    }

    /// The flag names the translators asked about so far.
    pub fn asked(&self) -> std::collections::BTreeSet<String> {
        self.asked.borrow().clone()
    }

    /// Whether the flag was given.
    pub fn has(&self, long: &str) -> bool {
        self.ask(long);
        self.flags.iter().any(|(f, _)| f.long == long)
    }

    /// The last value given to a flag (mongo-tools keeps the last).
    pub fn value(&self, long: &str) -> Option<&str> {
        self.ask(long);
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| f.long == long)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value given to a repeatable flag, in order.
    pub fn values(&self, long: &str) -> Vec<String> {
        self.ask(long);
        self.flags
            .iter()
            .filter(|(f, _)| f.long == long)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// The first refused flag given, if any.
    pub fn refused(&self) -> Option<(&'static Flag, &'static str)> {
        self.flags.iter().find_map(|(f, _)| match f.status {
            Status::Refused(why) => Some((*f, why)),
            Status::Supported(_) => None,
        })
    }
}

/// Whether `a` reads as a flag rather than a value (`-` alone and negative numbers are values).
fn looks_like_flag(a: &str) -> bool {
    a.len() > 1 && a.starts_with('-') && !a[1..].starts_with(|c: char| c.is_ascii_digit())
}

fn unknown(tool: Tool, shown: &str, long: Option<&str>) -> CompatError {
    if let Some(l) = long {
        if matches!(l, "dbpath" | "directoryperdb" | "journal") {
            return CompatError::Usage(format!(
                "{shown}: reading data files directly (--dbpath and related flags) was removed from mongo-tools in 3.0 and oxidump does not do it either; dump through a running server"
            ));
        }
        let other = match tool {
            Tool::Mongodump => Tool::Mongorestore,
            Tool::Mongorestore => Tool::Mongodump,
        };
        if flags::by_long(other, l).is_some() {
            return CompatError::Usage(format!(
                "unknown option {shown}: it is a {} flag, not a {} one",
                other.name(),
                tool.name()
            ));
        }
    }
    CompatError::Usage(format!(
        "unknown option {shown} (see {} --help)",
        tool.name()
    ))
}

fn level(v: &str, shown: &str) -> Result<u32, CompatError> {
    v.parse::<u32>().map_err(|_| {
        CompatError::Usage(format!(
            "{shown}: the verbosity level must be a number, not {v:?}"
        ))
    })
}

/// Parses `args` (without the program name) as `tool`'s command line. Refused flags are
/// parsed like the others; [`Parsed::refused`] finds them.
pub fn parse(tool: Tool, args: &[String]) -> Result<Parsed, CompatError> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.positionals.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let shown = format!("--{name}");
            let f = flags::by_long(tool, name).ok_or_else(|| unknown(tool, &shown, Some(name)))?;
            match f.arity {
                Arity::Switch => {
                    if inline.is_some() {
                        return Err(CompatError::Usage(format!("{shown} takes no value")));
                    }
                    p.flags.push((f, None));
                }
                Arity::Optional => {
                    p.flags
                        .push((f, Some(inline.unwrap_or_else(|| "-".into()))));
                }
                Arity::Level => {
                    p.verbosity += match &inline {
                        Some(v) => level(v, &shown)?,
                        None => 1,
                    };
                    p.flags.push((f, inline));
                }
                Arity::Value => {
                    let v = match inline {
                        Some(v) => v,
                        None => match args.get(i) {
                            Some(n) if !looks_like_flag(n) => {
                                i += 1;
                                n.clone()
                            }
                            _ => {
                                return Err(CompatError::Usage(format!(
                                    "expected an argument for flag {shown}"
                                )));
                            }
                        },
                    };
                    p.flags.push((f, Some(v)));
                }
            }
            continue;
        }
        if looks_like_flag(a) {
            let cluster: Vec<char> = a[1..].chars().collect();
            let mut k = 0;
            while k < cluster.len() {
                let c = cluster[k];
                k += 1;
                let shown = format!("-{c}");
                let f = flags::by_short(tool, c).ok_or_else(|| unknown(tool, &shown, None))?;
                match f.arity {
                    Arity::Switch | Arity::Optional => p.flags.push((f, None)),
                    Arity::Level => {
                        let rest: String = cluster[k..].iter().collect();
                        if let Some(n) = rest.strip_prefix('=') {
                            p.verbosity += level(n, &shown)?;
                            k = cluster.len();
                        } else {
                            p.verbosity += 1;
                        }
                        p.flags.push((f, None));
                    }
                    Arity::Value => {
                        let rest: String = cluster[k..].iter().collect();
                        let v = if !rest.is_empty() {
                            rest.strip_prefix('=').unwrap_or(&rest).to_string()
                        } else {
                            match args.get(i) {
                                Some(n) if !looks_like_flag(n) => {
                                    i += 1;
                                    n.clone()
                                }
                                _ => {
                                    return Err(CompatError::Usage(format!(
                                        "expected an argument for flag {shown}"
                                    )));
                                }
                            }
                        };
                        p.flags.push((f, Some(v)));
                        k = cluster.len();
                    }
                }
            }
            continue;
        }
        p.positionals.push(a.clone());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_dump(a: &[&str]) -> Result<Parsed, CompatError> {
        parse(
            Tool::Mongodump,
            &a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn spellings_of_values() {
        let p = parse_dump(&[
            "-d",
            "a",
            "--collection=b",
            "-hlocalhost:1",
            "--port",
            "2",
            "-o=x",
        ])
        .unwrap();
        assert_eq!(p.value("db"), Some("a"));
        assert_eq!(p.value("collection"), Some("b"));
        assert_eq!(p.value("host"), Some("localhost:1"));
        assert_eq!(p.value("port"), Some("2"));
        assert_eq!(p.value("out"), Some("x"));
    }

    #[test]
    fn optional_values_only_with_equals() {
        let p = parse_dump(&["--archive", "mongodb://h"]).unwrap();
        assert_eq!(p.value("archive"), Some("-"));
        assert_eq!(p.positionals, vec!["mongodb://h"]);
        let p = parse_dump(&["--archive=f.archive"]).unwrap();
        assert_eq!(p.value("archive"), Some("f.archive"));
    }

    #[test]
    fn verbosity_levels() {
        assert_eq!(parse_dump(&["-v"]).unwrap().verbosity, 1);
        assert_eq!(parse_dump(&["-vvv"]).unwrap().verbosity, 3);
        assert_eq!(parse_dump(&["--verbose=4"]).unwrap().verbosity, 4);
        assert_eq!(parse_dump(&["-v", "--verbose"]).unwrap().verbosity, 2);
        assert!(parse_dump(&["--verbose=lots"]).is_err());
    }

    #[test]
    fn repeatable_and_last_wins() {
        let p = parse_dump(&[
            "--excludeCollection",
            "a",
            "--excludeCollection=b",
            "-d",
            "x",
            "-d",
            "y",
        ])
        .unwrap();
        assert_eq!(p.values("excludeCollection"), vec!["a", "b"]);
        assert_eq!(p.value("db"), Some("y"));
    }

    #[test]
    fn values_may_be_dash_or_negative() {
        let p = parse_dump(&["-o", "-", "-j", "-1"]).unwrap();
        assert_eq!(p.value("out"), Some("-"));
        assert_eq!(p.value("numParallelCollections"), Some("-1"));
    }

    #[test]
    fn errors_name_the_flag() {
        let e = parse_dump(&["--nsInclude", "a.*"]).unwrap_err().to_string();
        assert!(
            e.contains("--nsInclude") && e.contains("mongorestore"),
            "{e}"
        );
        let e = parse_dump(&["--bogus"]).unwrap_err().to_string();
        assert!(e.contains("unknown option --bogus"), "{e}");
        let e = parse_dump(&["--gzip=yes"]).unwrap_err().to_string();
        assert!(e.contains("--gzip takes no value"), "{e}");
        let e = parse_dump(&["-d"]).unwrap_err().to_string();
        assert!(e.contains("expected an argument for flag -d"), "{e}");
        let e = parse_dump(&["-d", "--gzip"]).unwrap_err().to_string();
        assert!(e.contains("-d"), "{e}");
        let e = parse_dump(&["--dbpath", "/data"]).unwrap_err().to_string();
        assert!(e.contains("--dbpath"), "{e}");
        let e = parse_dump(&["-Z"]).unwrap_err().to_string();
        assert!(e.contains("-Z"), "{e}");
    }

    #[test]
    fn double_dash_ends_flags() {
        let p = parse_dump(&["--gzip", "--", "--not-a-flag"]).unwrap();
        assert!(p.has("gzip"));
        assert_eq!(p.positionals, vec!["--not-a-flag"]);
    }

    #[test]
    fn refused_flags_are_found() {
        let p = parse_dump(&["--gzip", "--sslFIPSMode"]).unwrap();
        let (f, why) = p.refused().unwrap();
        assert_eq!(f.long, "sslFIPSMode");
        assert!(!why.is_empty());
    }

    #[test]
    fn switch_clusters() {
        // -v is the only short switch-like flag; a cluster mixing it with a value flag
        // takes the rest as the value.
        let p = parse_dump(&["-vd", "x"]).unwrap();
        assert_eq!(p.verbosity, 1);
        assert_eq!(p.value("db"), Some("x"));
        let p = parse_dump(&["-dmydb"]).unwrap();
        assert_eq!(p.value("db"), Some("mydb"));
    }
}
