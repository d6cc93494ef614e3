//! Pre-encoding a whole table: every prefix with one shared attribute set
//! (ORIGIN IGP, AS_PATH [our AS], the given next hop), packed by manul's
//! [`pack_announce`] into as few UPDATEs as the context allows, then the
//! End-of-RIB marker — one buffer, ready for a single `write_all`.

use std::net::IpAddr;

use anyhow::{Result, anyhow};
use ipnet::IpNet;
use manul_bgp::types::Family;
use manul_bgp::wire::{
    AsPath, Context, Message, NextHop, Nlri, Origin, PathAttributes, Update, pack_announce,
};

/// A pre-encoded table.
#[derive(Debug, Clone)]
pub struct Table {
    /// The UPDATEs and the End-of-RIB, back to back.
    pub bytes: Vec<u8>,
    /// UPDATE messages carrying NLRI (End-of-RIB not counted).
    pub messages: usize,
    pub prefixes: usize,
}

/// The attributes every announced prefix shares.
pub fn attributes(asn: u32) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![asn])),
        ..PathAttributes::default()
    }
}

/// Encode `prefixes` (all of `family`) for a session with context `ctx`.
pub fn encode_table(
    ctx: &Context,
    family: Family,
    asn: u32,
    next_hop: IpAddr,
    prefixes: &[IpNet],
) -> Result<Table> {
    let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
    let mut bytes = Vec::with_capacity(prefixes.len() * 5 + 4096);
    let messages = pack_announce(
        ctx,
        family,
        &attributes(asn),
        NextHop::new(next_hop),
        &nlri,
        &mut bytes,
    )
    .map_err(|e| anyhow!("encoding the table: {e:?}"))?;
    Message::Update(Update::end_of_rib_marker(family))
        .encode(ctx, &mut bytes)
        .map_err(|e| anyhow!("encoding End-of-RIB: {e:?}"))?;
    Ok(Table {
        bytes,
        messages,
        prefixes: prefixes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counter::PrefixSet;
    use crate::prefixes::generate;
    use crate::session::MessageReader;

    #[test]
    fn a_table_decodes_back_to_its_prefixes_and_ends_with_eor() {
        let ctx = Context {
            four_octet_as: true,
            ..Context::default()
        };
        let prefixes = generate("11.0.0.0".parse().unwrap(), 24, 5000).unwrap();
        let t = encode_table(
            &ctx,
            Family::Ipv4Unicast,
            65001,
            "10.0.0.1".parse().unwrap(),
            &prefixes,
        )
        .unwrap();
        // 4096-octet messages hold ~1000 /24s each.
        assert!(t.messages >= 5 && t.messages < 10, "{}", t.messages);
        let mut set = PrefixSet::default();
        let mut r = MessageReader::new(&t.bytes[..]);
        while let Some(m) = r.next_message(&ctx).unwrap() {
            match Message::decode(m, &ctx).unwrap() {
                Message::Update(u) => set.apply(&u),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(set.len(), 5000);
        assert!(set.end_of_rib);
    }
}
