//! The config file's either-or forms, read by hand: a certificate path
//! or `[[listener.tls.cert]]` tables, an endpoint string or table, and
//! tables read as ordered key/value pairs.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use super::file::{CertsFile, EndpointFile, EndpointTableFile};

/// A TOML table read as key/value pairs in file order (weights, matches).
#[derive(Debug)]
pub struct Entries<K, V>(pub Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = Entries<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        de.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for CertsFile {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct CertsVisitor;

        impl<'de> Visitor<'de> for CertsVisitor {
            type Value = CertsFile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PEM file path or [[listener.tls.cert]] tables")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CertsFile, E> {
                Ok(CertsFile::Path(v.to_owned()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<CertsFile, A::Error> {
                let mut list = Vec::new();
                while let Some(cert) = seq.next_element()? {
                    list.push(cert);
                }
                Ok(CertsFile::List(list))
            }
        }

        de.deserialize_any(CertsVisitor)
    }
}

impl<'de> Deserialize<'de> for EndpointFile {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct EndpointVisitor;

        impl<'de> Visitor<'de> for EndpointVisitor {
            type Value = EndpointFile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"host:port\" or { address = \"host:port\", weight = N }")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EndpointFile, E> {
                Ok(EndpointFile::Plain(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EndpointFile, A::Error> {
                let de = serde::de::value::MapAccessDeserializer::new(map);
                EndpointTableFile::deserialize(de).map(EndpointFile::Table)
            }
        }

        de.deserialize_any(EndpointVisitor)
    }
}
