//! The ids people see and type: faces `f345`, clusters `c12`, photos `p7`, each the row's id with
//! its letter. Each kind is parsed and printed here, and only here: `Display` and `FromStr` (what
//! the command line takes, through clap), serde (the JSON every front prints and the review page
//! sends) and rusqlite (a row's id read and bound as the integer it is stored as). A bare number
//! (`345`) is taken where the kind is known, and another kind's id is refused by name ("\"c12\" is
//! a cluster"). [`Ref`] is a cluster or a face, as `visage name` takes them.

use std::fmt;
use std::str::FromStr;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};

/// A text that is not an id of the kind asked for; says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(String);

/// The kinds, by letter: what each is called and an example, for messages.
const KINDS: [(char, &str, &str); 3] = [
    ('f', "face", "f345"),
    ('c', "cluster", "c12"),
    ('p', "photo", "p7"),
];

/// The row id in `s`, an id of the kind with `letter` (or a bare number).
fn parse(s: &str, letter: char) -> Result<i64, IdError> {
    let (_, what, example) = KINDS.iter().find(|k| k.0 == letter).expect("a known kind");
    let number = |n: &str| n.parse::<i64>().ok().filter(|n| *n > 0);
    let mut chars = s.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    if let Some(id) = number(s) {
        return Ok(id);
    }
    match first {
        Some(c) if c == letter => number(chars.as_str()),
        Some(c) => {
            if let Some((_, other, _)) = KINDS.iter().find(|k| k.0 == c)
                && number(chars.as_str()).is_some()
            {
                return Err(IdError(format!(
                    "{s:?} is a {other}; expected a {what} like {example}"
                )));
            }
            None
        }
        None => None,
    }
    .ok_or_else(|| IdError(format!("{s:?}: expected a {what} like {example}")))
}

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $letter:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $letter, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse(s, $letter).map($name)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.0))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($name)
            }
        }
    };
}

id!(
    /// A face: `f345`.
    FaceId,
    'f'
);
id!(
    /// A cluster: `c12`.
    ClusterId,
    'c'
);
id!(
    /// A photo: `p7`.
    PhotoId,
    'p'
);

/// A cluster (`c12`) or a face (`f345`): what `visage name` and the review page name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ref {
    Cluster(ClusterId),
    Face(FaceId),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Cluster(c) => c.fmt(f),
            Ref::Face(id) => id.fmt(f),
        }
    }
}

impl FromStr for Ref {
    type Err = IdError;
    /// The letter says which: a bare number could be either, so it is refused.
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = || {
            IdError(format!(
                "{s:?}: expected a cluster like c12 or a face like f345"
            ))
        };
        match s.chars().next().map(|c| c.to_ascii_lowercase()) {
            Some('c') => s.parse().map(Ref::Cluster).map_err(|_| bad()),
            Some('f') => s.parse().map(Ref::Face).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ref {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Ids as a short list for a message or the history: the first six, then how many more
/// (`f1 f2 f3 f4 f5 f6 and 3 more`).
pub fn listed<T: fmt::Display>(ids: &[T]) -> String {
    let mut s: Vec<String> = ids.iter().take(6).map(T::to_string).collect();
    if ids.len() > 6 {
        s.push(format!("and {} more", ids.len() - 6));
    }
    s.join(" ")
}

/// Something asked for by id or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Face(FaceId),
    Cluster(ClusterId),
    Photo(PhotoId),
    Person(String),
}

impl Item {
    /// The command that lists the items of this kind.
    pub fn listed_by(&self) -> &'static str {
        match self {
            Item::Face(_) | Item::Photo(_) => "visage faces",
            Item::Cluster(_) => "visage clusters",
            Item::Person(_) => "visage people --all",
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Face(id) => write!(f, "face {id}"),
            Item::Cluster(id) => write!(f, "cluster {id}"),
            Item::Photo(id) => write!(f, "photo {id}"),
            Item::Person(name) => write!(f, "person named {name:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_print_one_way() {
        assert_eq!("f345".parse::<FaceId>(), Ok(FaceId(345)));
        assert_eq!("F345".parse::<FaceId>(), Ok(FaceId(345)));
        assert_eq!("345".parse::<FaceId>(), Ok(FaceId(345)));
        assert_eq!("c12".parse::<ClusterId>(), Ok(ClusterId(12)));
        assert_eq!("p7".parse::<PhotoId>(), Ok(PhotoId(7)));
        assert_eq!(FaceId(345).to_string(), "f345");
        assert_eq!(ClusterId(12).to_string(), "c12");
        assert_eq!(PhotoId(7).to_string(), "p7");
        assert_eq!(serde_json::to_string(&ClusterId(3)).unwrap(), "\"c3\"");
        for id in [1, 99, i64::MAX] {
            assert_eq!(FaceId(id).to_string().parse::<FaceId>(), Ok(FaceId(id)));
        }
    }

    #[test]
    fn wrong_kinds_and_junk_say_what_was_expected() {
        let e = "f39".parse::<ClusterId>().unwrap_err().to_string();
        assert_eq!(e, "\"f39\" is a face; expected a cluster like c12");
        let e = "c3".parse::<FaceId>().unwrap_err().to_string();
        assert_eq!(e, "\"c3\" is a cluster; expected a face like f345");
        for junk in [
            "",
            "c",
            "c1x",
            "x1",
            "c0",
            "c-3",
            "0",
            "-4",
            "c 3",
            "f99999999999999999999",
        ] {
            let e = junk.parse::<ClusterId>().unwrap_err().to_string();
            assert!(e.contains("expected a cluster like c12"), "{junk}: {e}");
        }
        assert_eq!(
            Item::Person("Bob".into()).to_string(),
            "person named \"Bob\""
        );
        assert_eq!(Item::Cluster(ClusterId(99)).to_string(), "cluster c99");
    }

    #[test]
    fn refs_say_their_kind_by_letter() {
        assert_eq!("c12".parse::<Ref>(), Ok(Ref::Cluster(ClusterId(12))));
        assert_eq!("F7".parse::<Ref>(), Ok(Ref::Face(FaceId(7))));
        assert_eq!(Ref::Face(FaceId(7)).to_string(), "f7");
        for junk in ["12", "x1", "c0", "c1x", "p3", ""] {
            let e = junk.parse::<Ref>().unwrap_err().to_string();
            assert!(
                e.contains("expected a cluster like c12 or a face like f345"),
                "{junk}: {e}"
            );
        }
        assert_eq!(listed(&[FaceId(1), FaceId(2)]), "f1 f2");
        let many: Vec<FaceId> = (1..=8).map(FaceId).collect();
        assert_eq!(listed(&many), "f1 f2 f3 f4 f5 f6 and 2 more");
    }

    #[test]
    fn ids_go_through_json_and_sqlite_as_they_are() {
        let json = serde_json::to_string(&(FaceId(1), Some(ClusterId(2)), PhotoId(3))).unwrap();
        assert_eq!(json, r#"["f1","c2","p3"]"#);
        let back: (FaceId, Option<ClusterId>, PhotoId) = serde_json::from_str(&json).unwrap();
        assert_eq!(back, (FaceId(1), Some(ClusterId(2)), PhotoId(3)));
        let e = serde_json::from_str::<FaceId>(r#""c3""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a cluster; expected a face"), "{e}");
        let r: Ref = serde_json::from_str(r#""c9""#).unwrap();
        assert_eq!(r, Ref::Cluster(ClusterId(9)));
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let (stored, back): (i64, FaceId) = conn
            .query_row("SELECT ?1, ?1", [FaceId(345)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((stored, back), (345, FaceId(345)));
    }
}
