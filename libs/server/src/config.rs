//! Configuration: one YAML file, and every key overridable by a flag.
//!
//! Flags name a key by its path with dots: `--ingester.max-series=100` (or
//! `-ingester.max_series 100`) sets `ingester: {max_series: 100}`. Dashes
//! and underscores are interchangeable. Values are read as YAML scalars, so
//! `true`, `42` and `5m` all do what they look like; a list or map can be
//! given in YAML flow syntax (`--ring.dynamodb.endpoint=...`).
//!
//! Precedence: built-in defaults, then the file (`--config.file`), then
//! flags. Unknown keys are errors, so a typo never silently does nothing.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_yaml::{Mapping, Value};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("flag {flag:?} needs a value (write --key=value or --key value)")]
    MissingValue { flag: String },
    #[error("argument {0:?} is not a flag; flags look like --section.key=value")]
    NotAFlag(String),
    #[error("flag {flag:?}: {reason}")]
    BadFlag { flag: String, reason: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The outcome of parsing the command line.
pub enum LoadedConfig<T> {
    Run(T),
    /// `--help` was given; the text lists every key with its default.
    Help(String),
    /// `--print-config`: the effective configuration as YAML.
    Print(String),
}

/// Builds a `T` from `T::default()`, an optional YAML file and flag overrides.
pub fn load_config<T>(program: &str, args: &[String]) -> Result<LoadedConfig<T>, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    load_config_with(&T::default(), program, args)
}

/// Builds a `T` from the given defaults, an optional YAML file and flag
/// overrides.
pub fn load_config_with<T>(
    defaults: &T,
    program: &str,
    args: &[String],
) -> Result<LoadedConfig<T>, ConfigError>
where
    T: Serialize + DeserializeOwned,
{
    let defaults = serde_yaml::to_value(defaults)
        .map_err(|e| ConfigError::Invalid(format!("cannot serialize defaults: {e}")))?;
    let mut overrides: Vec<(String, String)> = Vec::new();
    let mut file: Option<PathBuf> = None;
    let mut print = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(ConfigError::NotAFlag(arg.clone()));
        };
        let (key, inline) = match stripped.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (stripped.to_string(), None),
        };
        match key.as_str() {
            "help" | "h" => return Ok(LoadedConfig::Help(help_text(program, &defaults))),
            "print-config" | "print_config" => {
                print = true;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .ok_or_else(|| ConfigError::MissingValue { flag: arg.clone() })?;
                i += 1;
                v.clone()
            }
        };
        if key == "config.file" || key == "config-file" {
            file = Some(PathBuf::from(value));
        } else {
            overrides.push((key, value));
        }
    }

    let mut merged = defaults;
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let from_file: Value = serde_yaml::from_str(&text).map_err(|source| ConfigError::Yaml {
            path: path.clone(),
            source,
        })?;
        if !from_file.is_null() {
            merge(&mut merged, from_file);
        }
    }
    for (key, raw) in overrides {
        let value: Value = serde_yaml::from_str(&raw).unwrap_or(Value::String(raw.clone()));
        // Keep strings that YAML would read as something else when the
        // default is a string (an ID like `007`, a zone like `on`).
        set_path(&mut merged, &key, value, &raw)?;
    }
    let config: T =
        serde_yaml::from_value(merged.clone()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    if print {
        let text = serde_yaml::to_string(&config)
            .map_err(|e| ConfigError::Invalid(format!("cannot print config: {e}")))?;
        return Ok(LoadedConfig::Print(text));
    }
    Ok(LoadedConfig::Run(config))
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn set_path(root: &mut Value, key: &str, value: Value, raw: &str) -> Result<(), ConfigError> {
    let parts: Vec<String> = key.split('.').map(|p| p.replace('-', "_")).collect();
    let mut node = root;
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        let Value::Mapping(map) = node else {
            return Err(ConfigError::BadFlag {
                flag: key.to_string(),
                reason: format!("{} is not a section", parts[..n].join(".")),
            });
        };
        let k = Value::String(part.clone());
        if !map.contains_key(&k) {
            // Optional sections (null by default) and free-form maps accept
            // new keys; everything else must already exist.
            let known: Vec<String> = map
                .keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect();
            return Err(ConfigError::BadFlag {
                flag: key.to_string(),
                reason: format!(
                    "unknown key {part:?}; known keys here: {}",
                    known.join(", ")
                ),
            });
        }
        if last {
            let slot = map.get_mut(&k).ok_or_else(|| ConfigError::BadFlag {
                flag: key.to_string(),
                reason: "unknown key".into(),
            })?;
            *slot = match (&*slot, value) {
                (Value::String(_), v) if !v.is_string() => Value::String(raw.to_string()),
                (_, v) => v,
            };
            return Ok(());
        }
        let child = map.get_mut(&k).ok_or_else(|| ConfigError::BadFlag {
            flag: key.to_string(),
            reason: "unknown key".into(),
        })?;
        if child.is_null() {
            *child = Value::Mapping(Mapping::new());
        }
        node = child;
    }
    Ok(())
}

fn help_text(program: &str, defaults: &Value) -> String {
    let mut lines = Vec::new();
    flatten("", defaults, &mut lines);
    let mut out = format!(
        "Usage: {program} [--config.file=PATH] [--print-config] [--KEY=VALUE ...]\n\n\
         Every configuration key can be set with a flag; defaults shown:\n\n"
    );
    for (k, v) in lines {
        out.push_str(&format!("  --{k}={v}\n"));
    }
    out
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = k.as_str().unwrap_or("?").replace('_', "-");
                let path = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, child, out);
            }
        }
        other => {
            let text = serde_yaml::to_string(other).unwrap_or_default();
            out.push((prefix.to_string(), text.trim().replace('\n', " ")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        max_series: u64,
        name: String,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Cfg {
        port: u16,
        inner: Inner,
    }

    impl Default for Inner {
        fn default() -> Self {
            Self {
                max_series: 10,
                name: "a".into(),
            }
        }
    }

    impl Default for Cfg {
        fn default() -> Self {
            Self {
                port: 9009,
                inner: Inner::default(),
            }
        }
    }

    fn run(args: &[&str]) -> Result<Cfg, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match load_config::<Cfg>("t", &args)? {
            LoadedConfig::Run(c) => Ok(c),
            _ => panic!("expected a config"),
        }
    }

    #[test]
    fn flags_override_defaults_and_file() {
        let dir = std::env::temp_dir().join(format!("strata-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.yaml");
        std::fs::write(&path, "port: 1\ninner:\n  name: fromfile\n").unwrap();
        let c = run(&[
            "--config.file",
            path.to_str().unwrap(),
            "--inner.max-series=5",
        ])
        .unwrap();
        assert_eq!(c.port, 1);
        assert_eq!(c.inner.max_series, 5);
        assert_eq!(c.inner.name, "fromfile");
        let c = run(&["-inner.name", "007"]).unwrap();
        assert_eq!(c.inner.name, "007");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = run(&["--inner.nope=1"]).err().unwrap().to_string();
        assert!(err.contains("unknown key \"nope\""), "{err}");
        assert!(run(&["--port=notanumber"]).is_err());
        assert!(run(&["--port"]).is_err());
        assert!(run(&["stray"]).is_err());
    }

    #[test]
    fn help_lists_every_key() {
        let args = vec!["--help".to_string()];
        let LoadedConfig::Help(text) = load_config::<Cfg>("t", &args).unwrap() else {
            panic!("expected help");
        };
        assert!(text.contains("--port=9009"));
        assert!(text.contains("--inner.max-series=10"));
    }
}
