//! Rule groups in an object store: one object per group, its YAML, under
//! `<prefix><tenant>/<namespace>/<group>` with the namespace and group
//! names base64url-encoded (they may hold any character).

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_chunk_store::{Bytes, ObjectStore, StoreError};
use strata_rulefmt::RuleGroup;

use crate::error::RulerError;

/// Where a group is kept: its tenant, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub tenant: String,
    pub namespace: String,
    pub group: String,
}

impl GroupKey {
    pub fn new(tenant: &str, namespace: &str, group: &str) -> Self {
        Self {
            tenant: tenant.to_string(),
            namespace: namespace.to_string(),
            group: group.to_string(),
        }
    }

    /// The position of this group on the ruler ring.
    pub fn ring_token(&self) -> u32 {
        // FNV-1a over the three names with separators no name can forge
        // (a NUL byte between them).
        let mut h: u32 = 0x811c_9dc5;
        for part in [&self.tenant, &self.namespace, &self.group] {
            for b in part.as_bytes().iter().chain(std::iter::once(&0u8)) {
                h ^= u32::from(*b);
                h = h.wrapping_mul(0x0100_0193);
            }
        }
        h
    }
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.namespace, self.group)
    }
}

pub struct RuleStore {
    objects: Arc<dyn ObjectStore>,
    prefix: String,
}

impl std::fmt::Debug for RuleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleStore")
            .field("kind", &self.objects.kind())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RuleStore {
    /// `prefix` is empty or ends with `/`.
    pub fn new(objects: Arc<dyn ObjectStore>, prefix: impl Into<String>) -> Self {
        Self {
            objects,
            prefix: prefix.into(),
        }
    }

    fn object_key(&self, key: &GroupKey) -> String {
        format!(
            "{}{}/{}/{}",
            self.prefix,
            key.tenant,
            b64url_encode(key.namespace.as_bytes()),
            b64url_encode(key.group.as_bytes())
        )
    }

    fn parse_key(&self, object: &str) -> Option<GroupKey> {
        let rest = object.strip_prefix(&self.prefix)?;
        let mut parts = rest.split('/');
        let (tenant, ns, group) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || strata_model::validate_tenant_id(tenant).is_err() {
            return None;
        }
        Some(GroupKey {
            tenant: tenant.to_string(),
            namespace: String::from_utf8(b64url_decode(ns)?).ok()?,
            group: String::from_utf8(b64url_decode(group)?).ok()?,
        })
    }

    /// Every stored group's key (of one tenant, or of all).
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<GroupKey>, RulerError> {
        let prefix = match tenant {
            Some(t) => format!("{}{t}/", self.prefix),
            None => self.prefix.clone(),
        };
        let keys = self.objects.list(&prefix).await.map_err(store_error)?;
        let mut out: Vec<GroupKey> = keys.iter().filter_map(|k| self.parse_key(k)).collect();
        out.sort();
        Ok(out)
    }

    /// The group, or `None` when it is not stored.
    pub async fn get(&self, key: &GroupKey) -> Result<Option<RuleGroup>, RulerError> {
        let body = match self.objects.get(&self.object_key(key)).await {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let text = std::str::from_utf8(&body)
            .map_err(|_| RulerError::Corrupt(format!("rule group {key} is not UTF-8")))?;
        strata_rulefmt::parse_rule_group(text)
            .map(Some)
            .map_err(|e| RulerError::Corrupt(format!("stored rule group {key}: {e}")))
    }

    /// Every group of `tenant`, by namespace, in name order.
    pub async fn tenant_groups(
        &self,
        tenant: &str,
    ) -> Result<BTreeMap<String, Vec<RuleGroup>>, RulerError> {
        let keys = self.list(Some(tenant)).await?;
        let groups = futures::future::try_join_all(keys.iter().map(|k| self.get(k))).await?;
        let mut out: BTreeMap<String, Vec<RuleGroup>> = BTreeMap::new();
        for (key, group) in keys.into_iter().zip(groups) {
            if let Some(g) = group {
                out.entry(key.namespace).or_default().push(g);
            }
        }
        Ok(out)
    }

    pub async fn put(&self, key: &GroupKey, group: &RuleGroup) -> Result<(), RulerError> {
        self.objects
            .put(&self.object_key(key), Bytes::from(group.to_yaml()))
            .await
            .map_err(store_error)
    }

    /// Deletes one group; false when it did not exist.
    pub async fn delete(&self, key: &GroupKey) -> Result<bool, RulerError> {
        let exists = self.get(key).await.ok().flatten().is_some()
            || self.list(Some(&key.tenant)).await?.iter().any(|k| k == key);
        if !exists {
            return Ok(false);
        }
        self.objects
            .delete(&self.object_key(key))
            .await
            .map_err(store_error)?;
        Ok(true)
    }

    /// Deletes every group of a namespace; how many there were.
    pub async fn delete_namespace(
        &self,
        tenant: &str,
        namespace: &str,
    ) -> Result<usize, RulerError> {
        let keys: Vec<GroupKey> = self
            .list(Some(tenant))
            .await?
            .into_iter()
            .filter(|k| k.namespace == namespace)
            .collect();
        for key in &keys {
            self.objects
                .delete(&self.object_key(key))
                .await
                .map_err(store_error)?;
        }
        Ok(keys.len())
    }
}

fn store_error(e: StoreError) -> RulerError {
    RulerError::Store(e.to_string())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5).
pub(crate) fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding, and a lone 6-bit group is invalid.
    if bits >= 6 || acc != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "ns/with slashes",
            "ünïcödé",
            "\0\u{7f}",
        ] {
            let e = b64url_encode(s.as_bytes());
            assert!(!e.contains('/') && !e.contains('='), "{e}");
            assert_eq!(b64url_decode(&e).as_deref(), Some(s.as_bytes()), "{s}");
        }
        assert_eq!(b64url_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64url_encode(b"fo"), "Zm8");
        assert!(b64url_decode("Zm9=").is_none());
        assert!(b64url_decode("Z").is_none());
    }

    #[test]
    fn ring_tokens_differ_by_every_name() {
        let a = GroupKey::new("t", "ns", "g").ring_token();
        assert_ne!(a, GroupKey::new("u", "ns", "g").ring_token());
        assert_ne!(a, GroupKey::new("t", "ns2", "g").ring_token());
        assert_ne!(
            GroupKey::new("t", "a", "bc").ring_token(),
            GroupKey::new("t", "ab", "c").ring_token()
        );
    }

    #[tokio::test]
    async fn groups_are_stored_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Arc::new(strata_chunk_store::LocalObjectStore::new(dir.path()).unwrap());
        let store = RuleStore::new(objects, "");
        let group =
            strata_rulefmt::parse_rule_group("name: g\nrules:\n- record: a:b\n  expr: sum(up)\n")
                .unwrap();
        store
            .put(&GroupKey::new("t1", "ns/x", "g"), &group)
            .await
            .unwrap();
        store
            .put(&GroupKey::new("t2", "ns/x", "g"), &group)
            .await
            .unwrap();
        assert_eq!(store.list(None).await.unwrap().len(), 2);
        let t1 = store.tenant_groups("t1").await.unwrap();
        assert_eq!(t1.get("ns/x").map(|g| g.len()), Some(1));
        assert!(store
            .delete(&GroupKey::new("t1", "ns/x", "g"))
            .await
            .unwrap());
        assert!(!store
            .delete(&GroupKey::new("t1", "ns/x", "g"))
            .await
            .unwrap());
        assert!(store.tenant_groups("t1").await.unwrap().is_empty());
        assert_eq!(store.list(Some("t2")).await.unwrap().len(), 1);
    }
}
