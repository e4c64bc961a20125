//! Reads a C options JSON into a command's options struct (`CalibrationArgs`, `CompareArgs`:
//! the same structs clap fills from the command line).
//!
//! serde_json's own errors do not say which key held a value of the wrong type, so the
//! object is handed to the struct's `Deserialize` through the small deserializer below,
//! which knows the key of every value. Its messages:
//! - `unknown key "K"; expected one of: a, b, …` (checked before any value is read);
//! - `missing required key "K"`;
//! - `"K" must be a string | an integer | a non-negative integer | a number | true or false,
//!   found …`.
//!
//! A key whose value is `null` counts as absent.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why an options JSON does not fit the command's options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OptionsError {
    NotJson(String),
    NotAnObject {
        found: String,
    },
    UnknownKey {
        key: String,
        known: &'static [&'static str],
    },
    MissingKey(&'static str),
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
    /// Any other complaint of a field's `Deserialize` (`key` is filled in on the way out).
    Invalid {
        key: Option<String>,
        message: String,
    },
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("options_json: ")?;
        match self {
            OptionsError::NotJson(e) => write!(f, "not valid JSON: {e}"),
            OptionsError::NotAnObject { found } => write!(f, "expected a JSON object, found {found}"),
            OptionsError::UnknownKey { key, known } => write!(f, "unknown key \"{key}\"; expected one of: {}", known.join(", ")),
            OptionsError::MissingKey(key) => write!(f, "missing required key \"{key}\""),
            OptionsError::WrongType { key, expected, found } => write!(f, "\"{key}\" must be {expected}, found {found}"),
            OptionsError::Invalid { key: Some(key), message } => write!(f, "\"{key}\": {message}"),
            OptionsError::Invalid { key: None, message } => f.write_str(message),
        }
    }
}

impl std::error::Error for OptionsError {}

impl de::Error for OptionsError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        OptionsError::Invalid { key: None, message: msg.to_string() }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        OptionsError::UnknownKey { key: field.to_string(), known: expected }
    }
    fn missing_field(field: &'static str) -> Self {
        OptionsError::MissingKey(field)
    }
}

impl OptionsError {
    fn at(self, key: &str) -> Self {
        match self {
            OptionsError::Invalid { key: None, message } => OptionsError::Invalid { key: Some(key.to_string()), message },
            other => other,
        }
    }
}

/// Parses `text` as a JSON object and builds `T` from it.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, OptionsError> {
    let value: Value = serde_json::from_str(text).map_err(|e| OptionsError::NotJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(OptionsError::NotAnObject { found: kind(&value) });
    };
    T::deserialize(Object(map))
}

/// The JSON value's kind and, for scalars, the value itself, for error messages.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The top-level object.
struct Object(Map<String, Value>);

impl<'de> de::Deserializer<'de> for Object {
    type Error = OptionsError;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, OptionsError> {
        // All unknown keys are reported before any value, whatever the key order.
        if let Some(key) = self.0.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(OptionsError::UnknownKey { key: key.clone(), known: fields });
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        let entries = self.0.into_iter().filter(|(_, v)| !v.is_null()).collect::<Vec<_>>().into_iter();
        visitor.visit_map(Entries { entries, pending: None })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The object's entries, handed out key by key; each value knows its key.
struct Entries {
    entries: std::vec::IntoIter<(String, Value)>,
    pending: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = OptionsError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, OptionsError> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let field = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(field))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, OptionsError> {
        let (key, value) = self.pending.take().ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        seed.deserialize(Field { key: &key, value }).map_err(|e| e.at(&key))
    }
}

/// One value and the key it is under.
struct Field<'k> {
    key: &'k str,
    value: Value,
}

impl Field<'_> {
    fn wrong(&self, expected: &'static str) -> OptionsError {
        OptionsError::WrongType { key: self.key.to_string(), expected, found: kind(&self.value) }
    }

    fn integer(&self) -> Option<i128> {
        self.value.as_i64().map(i128::from).or_else(|| self.value.as_u64().map(i128::from))
    }
}

/// `deserialize_u8` … `deserialize_i64`: the value must be an integer in the type's range.
macro_rules! integers {
    ($($method:ident $visit:ident $t:ty: $expected:literal),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
            match self.integer().and_then(|n| <$t>::try_from(n).ok()) {
                Some(n) => visitor.$visit(n),
                None => Err(self.wrong($expected)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Field<'_> {
    type Error = OptionsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(ref n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, Some(f)) => visitor.visit_f64(f),
                _ => Err(self.wrong("a number")),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(_) => self.deserialize_seq(visitor),
            Value::Object(_) => Err(self.wrong("a string, a number, a boolean or an array")),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        match self.value {
            Value::Bool(b) => visitor.visit_bool(b),
            _ => Err(self.wrong("true or false")),
        }
    }

    integers! {
        deserialize_u8 visit_u8 u8: "a non-negative integer",
        deserialize_u16 visit_u16 u16: "a non-negative integer",
        deserialize_u32 visit_u32 u32: "a non-negative integer",
        deserialize_u64 visit_u64 u64: "a non-negative integer",
        deserialize_i8 visit_i8 i8: "an integer",
        deserialize_i16 visit_i16 i16: "an integer",
        deserialize_i32 visit_i32 i32: "an integer",
        deserialize_i64 visit_i64 i64: "an integer",
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        match self.value.as_f64() {
            Some(x) => visitor.visit_f64(x),
            None => Err(self.wrong("a number")),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        match self.value {
            Value::String(s) => visitor.visit_string(s),
            _ => Err(self.wrong("a string")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        if self.value.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionsError> {
        let Value::Array(items) = self.value else { return Err(self.wrong("an array")) };
        let len = items.len();
        let mut elements = Elements { key: self.key, items: items.into_iter() };
        let value = visitor.visit_seq(&mut elements)?;
        match elements.items.len() {
            0 => Ok(value),
            extra => Err(de::Error::invalid_length(len, &format!("{} elements", len - extra).as_str())),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, OptionsError> {
        self.deserialize_seq(visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct newtype_struct tuple_struct map struct enum identifier ignored_any
    }
}

/// The elements of an array value, all under the array's key.
struct Elements<'k> {
    key: &'k str,
    items: std::vec::IntoIter<Value>,
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = OptionsError;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, OptionsError> {
        self.items.next().map(|value| seed.deserialize(Field { key: self.key, value })).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        count: Option<usize>,
        #[serde(default)]
        device: i32,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        ratio: f64,
        size: Option<(usize, usize)>,
    }

    fn message(text: &str) -> String {
        from_json::<Sample>(text).unwrap_err().to_string()
    }

    #[test]
    fn values_are_read_and_null_is_absent() {
        let s: Sample = from_json(r#"{"name": "a", "count": 3, "device": -1, "on": true, "ratio": 2, "size": [4, 5]}"#).unwrap();
        assert_eq!(s, Sample { name: "a".into(), count: Some(3), device: -1, on: true, ratio: 2.0, size: Some((4, 5)) });
        let s: Sample = from_json(r#"{"name": "a", "count": null, "device": null}"#).unwrap();
        assert_eq!((s.count, s.device, s.size), (None, 0, None));
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(message("[1]"), "options_json: expected a JSON object, found an array");
        assert!(message("{").starts_with("options_json: not valid JSON: "), "{}", message("{"));
        assert_eq!(
            message(r#"{"count": "x", "nam": "a"}"#),
            "options_json: unknown key \"nam\"; expected one of: name, count, device, on, ratio, size"
        );
        assert_eq!(message(r#"{"count": 1}"#), "options_json: missing required key \"name\"");
        assert_eq!(message(r#"{"name": "a", "count": "3"}"#), "options_json: \"count\" must be a non-negative integer, found string \"3\"");
        assert_eq!(message(r#"{"name": "a", "count": -2}"#), "options_json: \"count\" must be a non-negative integer, found number -2");
        assert_eq!(message(r#"{"name": "a", "device": 1.5}"#), "options_json: \"device\" must be an integer, found number 1.5");
        assert_eq!(
            message(r#"{"name": "a", "device": 3000000000}"#),
            "options_json: \"device\" must be an integer, found number 3000000000"
        );
        assert_eq!(message(r#"{"name": 7}"#), "options_json: \"name\" must be a string, found number 7");
        assert_eq!(message(r#"{"name": "a", "on": 1}"#), "options_json: \"on\" must be true or false, found number 1");
        assert_eq!(message(r#"{"name": "a", "ratio": "x"}"#), "options_json: \"ratio\" must be a number, found string \"x\"");
        assert_eq!(message(r#"{"name": "a", "size": [1]}"#), "options_json: \"size\": invalid length 1, expected a tuple of size 2");
        assert_eq!(message(r#"{"name": "a", "size": [1, 2, 3]}"#), "options_json: \"size\": invalid length 3, expected 2 elements");
        assert_eq!(
            message(r#"{"name": "a", "size": [1, "b"]}"#),
            "options_json: \"size\" must be a non-negative integer, found string \"b\""
        );
    }
}
