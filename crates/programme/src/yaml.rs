//! Reading programme files: serde-saphyr (pure Rust, no `unsafe` C port) with the options the
//! files need, and [`Yaml`], the untyped value that formulas, defaults, parameter values and
//! expected results are read as before the engine gives them a meaning.

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// How deeply tables and lists may nest in a programme file (ITN7 nests fewer than ten
/// levels). Deeper, the file is refused before it is read: reading it is recursive.
pub const MAX_YAML_DEPTH: usize = 64;

/// Parses a whole file: YAML 1.2 (only `true` and `false` are booleans: `oui`, `non`, `y`
/// stay texts), a key twice in a table is an error, nesting bounded by [`MAX_YAML_DEPTH`], and
/// errors without a snippet of the file (diagnostics give the place themselves).
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::Error;
    let mut budget = options.budget.clone().unwrap_or_default();
    budget.max_depth = MAX_YAML_DEPTH;
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options(text, options)
}

/// A YAML value, untyped.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Yaml {
    #[default]
    Null,
    Bool(bool),
    /// A number as the parser read it (`15000`, `0.5`): the engine parses it as an exact
    /// decimal.
    Number(String),
    String(String),
    Sequence(Vec<Yaml>),
    Mapping(Mapping),
}

/// A YAML table, its entries in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping(Vec<(Yaml, Yaml)>);

impl Mapping {
    /// The value under a text key.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Takes the entry of a text key out.
    pub fn remove(&mut self, key: &str) -> Option<Yaml> {
        let at = self.0.iter().position(|(k, _)| k.as_str() == Some(key))?;
        Some(self.0.remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &Yaml> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Yaml, &Yaml)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Yaml {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value written on one line, for messages and explanations: scalars as written,
    /// lists as `[a, b]`, tables as `{clé: valeur, …}`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Yaml::Null => out.push('~'),
            Yaml::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Yaml::Number(n) | Yaml::String(n) => out.push_str(n),
            Yaml::Sequence(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Yaml::Mapping(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write(out);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Yaml, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Yaml;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("une valeur YAML")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Yaml, E> {
                Ok(Yaml::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Yaml, E> {
                Ok(Yaml::Number(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Yaml, E> {
                Ok(Yaml::Number(n.to_string()))
            }
            fn visit_i128<E: de::Error>(self, n: i128) -> Result<Yaml, E> {
                Ok(Yaml::Number(n.to_string()))
            }
            fn visit_u128<E: de::Error>(self, n: u128) -> Result<Yaml, E> {
                Ok(Yaml::Number(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Yaml, E> {
                // `{:?}` keeps a decimal point (`15000.0`), as the number was written.
                Ok(Yaml::Number(format!("{n:?}")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Yaml, E> {
                Ok(Yaml::String(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Yaml, E> {
                Ok(Yaml::String(s))
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Yaml, E> {
                Ok(Yaml::String(String::from_utf8_lossy(b).into_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
                Yaml::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Yaml::Sequence(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Yaml::Mapping(Mapping(entries)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_written() {
        let y: Yaml = from_str(
            "a: 15000\nb: 0.5\nc: oui\nd: 2021-01-25\ne: [1, '2']\nf: ~\ng: true\nh: no\n",
        )
        .unwrap();
        let Yaml::Mapping(m) = &y else {
            panic!("{y:?}")
        };
        assert_eq!(m.get("a"), Some(&Yaml::Number("15000".into())));
        assert_eq!(m.get("b"), Some(&Yaml::Number("0.5".into())));
        assert_eq!(m.get("c"), Some(&Yaml::String("oui".into())));
        assert_eq!(m.get("d"), Some(&Yaml::String("2021-01-25".into())));
        assert_eq!(m.get("f"), Some(&Yaml::Null));
        assert_eq!(m.get("g"), Some(&Yaml::Bool(true)));
        assert_eq!(m.get("h"), Some(&Yaml::String("no".into())));
        assert_eq!(m.get("e").map(Yaml::to_text).as_deref(), Some("[1, 2]"));
        assert!(from_str::<Yaml>("x: 1\nx: 2\n").is_err());
        let deep = format!("{}1{}", "[".repeat(65), "]".repeat(65));
        assert!(from_str::<Yaml>(&deep).is_err());
    }
}
