//! Route interning: the prefix table stores a 4-byte [`RouteId`] per path
//! instead of the path itself.
//!
//! A route here is what a path is apart from its prefix and ADD-PATH ID:
//! the peer it came from, its (interned) attributes, its next hop and the
//! graceful-restart stale mark. A full table announced in a few thousand
//! UPDATEs has a few thousand distinct routes at most (one per UPDATE and
//! import outcome), so a million prefixes cost a million 8-byte slots and a
//! handful of routes. Routes are reference-counted by the table; one whose
//! count drops to zero is freed when the batch that dropped it finishes, so
//! that its id stays readable until then.

use std::collections::HashMap;
use std::net::IpAddr;

use rustc_hash::FxBuildHasher;

use super::interner::Attrs;
use super::path::Path;
use super::peer::PeerIndex;
use crate::types::Family;

/// Index of a route in the [`RouteArena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub u32);

/// One interned route (a path without its prefix and path ID).
#[derive(Debug, Clone)]
pub struct Route {
    pub peer: PeerIndex,
    /// The family of the prefixes using it (a route is marked stale per
    /// family, RFC 4724 §4.2).
    pub family: Family,
    pub attrs: Attrs,
    pub next_hop: IpAddr,
    pub stale: bool,
}

impl Route {
    /// The path this route gives a prefix announced with `path_id`.
    pub fn path(&self, path_id: u32) -> Path {
        Path {
            peer: self.peer,
            path_id,
            attrs: Attrs::clone(&self.attrs),
            next_hop: self.next_hop,
            stale: self.stale,
        }
    }
}

/// What identifies a fresh (non-stale) route for interning.
type Shape = (PeerIndex, Family, usize, IpAddr);

#[derive(Debug)]
struct Entry {
    route: Option<Route>,
    refs: u32,
}

/// The table of routes, with reference counts.
#[derive(Debug, Default)]
pub struct RouteArena {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Fresh routes by shape. Stale routes are not in it: an announcement
    /// always makes a fresh route, and several stale ones may share a shape.
    index: HashMap<Shape, u32, FxBuildHasher>,
    /// Routes whose count reached zero in the current batch.
    dead: Vec<u32>,
}

fn shape(r: &Route) -> Shape {
    (
        r.peer,
        r.family,
        Attrs::as_ptr(&r.attrs) as usize,
        r.next_hop,
    )
}

impl RouteArena {
    /// The id of the fresh route with these parts, created if new. The
    /// caller then holds one reference per prefix it stores the id in
    /// ([`Self::retain`]).
    pub fn intern(
        &mut self,
        peer: PeerIndex,
        family: Family,
        attrs: &Attrs,
        next_hop: IpAddr,
    ) -> RouteId {
        let key = (peer, family, Attrs::as_ptr(attrs) as usize, next_hop);
        if let Some(&i) = self.index.get(&key) {
            return RouteId(i);
        }
        let route = Route {
            peer,
            family,
            attrs: Attrs::clone(attrs),
            next_hop,
            stale: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Entry {
                    route: Some(route),
                    refs: 0,
                };
                i
            }
            None => {
                self.entries.push(Entry {
                    route: Some(route),
                    refs: 0,
                });
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.index.insert(key, i);
        // Unreferenced until retained: collected at the end of the batch
        // if nothing stores it (e.g. every prefix was rejected).
        self.dead.push(i);
        RouteId(i)
    }

    /// The route behind `id`.
    ///
    /// # Panics
    /// On an id that was freed, which the table never holds.
    pub fn get(&self, id: RouteId) -> &Route {
        self.entries[id.0 as usize]
            .route
            .as_ref()
            .expect("route ids in the table are live")
    }

    pub fn retain(&mut self, id: RouteId) {
        self.retain_n(id, 1);
    }

    /// [`Self::retain`] `n` times.
    pub fn retain_n(&mut self, id: RouteId, n: u32) {
        self.entries[id.0 as usize].refs += n;
    }

    pub fn release(&mut self, id: RouteId) {
        let e = &mut self.entries[id.0 as usize];
        e.refs = e.refs.saturating_sub(1);
        if e.refs == 0 {
            self.dead.push(id.0);
        }
    }

    /// Free the routes nothing references any more; returns their
    /// attribute handles for the caller to release from the interner.
    pub fn collect(&mut self) -> Vec<Attrs> {
        let mut handles = Vec::new();
        for i in std::mem::take(&mut self.dead) {
            let e = &mut self.entries[i as usize];
            if e.refs != 0 {
                continue;
            }
            let Some(route) = e.route.take() else {
                continue;
            };
            if !route.stale && self.index.get(&shape(&route)) == Some(&i) {
                self.index.remove(&shape(&route));
            }
            self.free.push(i);
            handles.push(route.attrs);
        }
        handles
    }

    /// RFC 4724 §4.2: mark every route of `peer` in `family` stale (the
    /// prefixes using them keep them until refreshed or swept).
    pub fn mark_stale(&mut self, peer: PeerIndex, family: Family) -> usize {
        let mut marked = 0;
        for (i, e) in self.entries.iter_mut().enumerate() {
            let Some(r) = e.route.as_mut() else { continue };
            if r.peer != peer || r.family != family || r.stale {
                continue;
            }
            r.stale = true;
            marked += e.refs as usize;
            let key = shape(r);
            if self.index.get(&key) == Some(&(i as u32)) {
                self.index.remove(&key);
            }
        }
        marked
    }

    /// Number of live routes.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn attrs() -> Attrs {
        Arc::new(Default::default())
    }

    #[test]
    fn same_parts_same_id_and_freed_at_zero() {
        let mut arena = RouteArena::default();
        let a = attrs();
        let nh: IpAddr = "192.0.2.1".parse().unwrap();
        let x = arena.intern(PeerIndex(1), Family::Ipv4Unicast, &a, nh);
        let y = arena.intern(PeerIndex(1), Family::Ipv4Unicast, &a, nh);
        let z = arena.intern(PeerIndex(2), Family::Ipv4Unicast, &a, nh);
        assert_eq!(x, y);
        assert_ne!(x, z);
        arena.retain(x);
        arena.retain(x);
        let freed = arena.collect();
        assert_eq!(freed.len(), 1, "z was never retained");
        arena.release(x);
        assert!(arena.collect().is_empty());
        arena.release(x);
        assert_eq!(arena.collect().len(), 1);
        assert!(arena.is_empty());
    }

    #[test]
    fn stale_routes_leave_the_index() {
        let mut arena = RouteArena::default();
        let a = attrs();
        let nh: IpAddr = "192.0.2.1".parse().unwrap();
        let x = arena.intern(PeerIndex(1), Family::Ipv4Unicast, &a, nh);
        arena.retain(x);
        assert_eq!(arena.mark_stale(PeerIndex(1), Family::Ipv6Unicast), 0);
        assert_eq!(arena.mark_stale(PeerIndex(1), Family::Ipv4Unicast), 1);
        assert!(arena.get(x).stale);
        let fresh = arena.intern(PeerIndex(1), Family::Ipv4Unicast, &a, nh);
        assert_ne!(fresh, x);
        assert!(!arena.get(fresh).stale);
    }
}
