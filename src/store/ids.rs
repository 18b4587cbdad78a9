//! The ids people see and type: faces `f345`, clusters `c12`, photos `p7`, each the row's id with
//! its letter. Each kind is parsed and printed here; a bare number (`345`) is taken where the kind
//! is known, and another kind's id is refused by name ("\"c12\" is a cluster").

use std::fmt;
use std::str::FromStr;

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
}
