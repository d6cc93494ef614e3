//! The namespaces of one run: the blaster's host, the device under test,
//! and (for pass-through) the sink's host, each on its own veth link.
//!
//! ```text
//! blaster 10.0.1.1 ---- 10.0.1.2  dut  10.0.2.2 ---- 10.0.2.1 sink
//! ```
//!
//! Everything is torn down (processes inside included) on drop.

use anyhow::Result;
use manul_tests::Netns;

pub const BLASTER: &str = "10.0.1.1";
pub const DUT_IN: &str = "10.0.1.2";
pub const DUT_OUT: &str = "10.0.2.2";
pub const SINK: &str = "10.0.2.1";

pub const BLASTER_AS: u32 = 65001;
pub const DUT_AS: u32 = 65000;
pub const SINK_AS: u32 = 65002;

#[derive(Debug)]
pub struct Topo {
    pub blaster: Netns,
    pub dut: Netns,
    pub sink: Option<Netns>,
}

impl Topo {
    pub fn new(with_sink: bool) -> Result<Self> {
        let blaster = Netns::new("blaster")?;
        let dut = Netns::new("dut")?;
        blaster.veth("eth0", &dut, "eth0")?;
        blaster.add_addr("eth0", &format!("{BLASTER}/24"))?;
        dut.add_addr("eth0", &format!("{DUT_IN}/24"))?;
        let sink = if with_sink {
            let sink = Netns::new("sink")?;
            dut.veth("eth1", &sink, "eth0")?;
            dut.add_addr("eth1", &format!("{DUT_OUT}/24"))?;
            sink.add_addr("eth0", &format!("{SINK}/24"))?;
            Some(sink)
        } else {
            None
        };
        Ok(Self { blaster, dut, sink })
    }
}
