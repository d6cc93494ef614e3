//! The transitions of RFC 4271 §8.2.2, one state at a time.
//!
//! Deliberate deviations, each what deployed speakers do:
//! - A failed TCP connection in Connect or Active returns to Active (listening)
//!   with the ConnectRetry timer restarted, instead of going Idle; the retry
//!   interval doubles per consecutive failure up to `idle_hold_max`
//!   (outgoing connects with backoff).
//! - A connection the peer refused (or closed before sending anything,
//!   [`Event::TcpConnectionRefused`]) is retried sooner: after
//!   `refused_retry` (100 ms), doubling per refusal in a row, until that
//!   reaches the ConnectRetry time; from then on as any failure. §10 gives
//!   the ConnectRetryTime only as a suggested value and §8.1.1 leaves the
//!   retry strategy to the implementation (DampPeerOscillations); a
//!   refusal proves the peer's host is up and about to listen (a cluster
//!   whose agents start together), and the doubling bounds the attempts
//!   (six in the first 6.3 s, then the usual backoff), so a peer that
//!   keeps refusing costs what it cost before.
//! - A session that failed goes Idle and restarts itself after an idle-hold
//!   time that doubles with each failure in a row (DampPeerOscillations,
//!   §8.1.1); it resets once a session stays up longer than `idle_hold_max`.
//! - A passive peer never initiates: no ConnectRetry timer runs for it.
//! - The KeepaliveTimer restarts only when we send a KEEPALIVE (not on
//!   UPDATEs): a few more keepalives, never fewer.

use std::time::{Duration, Instant};

use crate::fsm::{Action, DownReason, Event, FsmConfig, State};
use crate::wire::notification::{cease, code, fsm, open};
use crate::wire::{Notification, Open};

fn notification(code: u8, subcode: u8) -> Notification {
    Notification::new(code, subcode, Vec::new())
}

/// One BGP session's state machine.
#[derive(Debug)]
pub struct Fsm {
    config: FsmConfig,
    state: State,
    /// Started and not stopped: failures restart it automatically.
    started: bool,
    /// A TCP connection exists (so dropping it means something).
    connected: bool,
    connect_retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    delay_open_at: Option<Instant>,
    idle_hold_at: Option<Instant>,
    /// Current ConnectRetry interval and idle-hold time (both back off).
    connect_retry: Duration,
    idle_hold: Duration,
    /// The next wait after a refused connection (backs off up to
    /// `connect_retry`; reset by the peer's OPEN).
    refused_retry: Duration,
    /// Negotiated on OPEN.
    hold_time: u16,
    keepalive: Duration,
    peer_open: Option<Open>,
    established_at: Option<Instant>,
}

impl Fsm {
    pub fn new(config: FsmConfig) -> Self {
        let connect_retry = config.timers.connect_retry;
        let idle_hold = config.timers.idle_hold;
        let refused_retry = config.timers.refused_retry;
        Self {
            config,
            state: State::Idle,
            started: false,
            connected: false,
            connect_retry_at: None,
            hold_at: None,
            keepalive_at: None,
            delay_open_at: None,
            idle_hold_at: None,
            connect_retry,
            idle_hold,
            refused_retry,
            hold_time: 0,
            keepalive: Duration::ZERO,
            peer_open: None,
            established_at: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &FsmConfig {
        &self.config
    }

    /// The peer's OPEN, once received.
    pub fn peer_open(&self) -> Option<&Open> {
        self.peer_open.as_ref()
    }

    /// When the session reached Established, if it is.
    pub fn established_at(&self) -> Option<Instant> {
        self.established_at
    }

    /// Negotiated hold time (0 = none), valid from OpenConfirm on.
    pub fn hold_time(&self) -> u16 {
        self.hold_time
    }

    /// The OPEN we send.
    pub fn our_open(&self) -> Open {
        Open {
            version: 4,
            asn: self.config.local_asn,
            hold_time: self.config.timers.hold_time,
            router_id: self.config.router_id,
            capabilities: self.config.capabilities.clone(),
        }
    }

    /// The earliest pending timer, for the driver to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.connect_retry_at,
            self.hold_at,
            self.keepalive_at,
            self.delay_open_at,
            self.idle_hold_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fire every timer due at `now` (RFC events 9-13).
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.hold_at) {
            self.hold_at = None;
            self.on_hold_timer_expires(now, &mut out);
        }
        if due(self.keepalive_at) {
            self.keepalive_at = None;
            self.on_keepalive_timer_expires(now, &mut out);
        }
        if due(self.delay_open_at) {
            self.delay_open_at = None;
            self.on_delay_open_timer_expires(now, &mut out);
        }
        if due(self.connect_retry_at) {
            self.connect_retry_at = None;
            self.on_connect_retry_timer_expires(now, &mut out);
        }
        if due(self.idle_hold_at) {
            self.idle_hold_at = None;
            if self.state == State::Idle && self.started {
                self.start(now, &mut out);
            }
        }
        out
    }

    /// Feed one event; returns what to do.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::ManualStart => {
                self.started = true;
                if self.state == State::Idle && self.idle_hold_at.is_none() {
                    self.start(now, &mut out);
                }
            }
            Event::ManualStop { notify } => self.stop(notify, &mut out),
            Event::TcpCrAcked | Event::TcpConnectionConfirmed => self.on_connected(now, &mut out),
            Event::TcpConnectionFails => self.on_connection_fails(now, &mut out),
            Event::TcpConnectionRefused => self.on_connection_refused(now, &mut out),
            Event::BgpOpen(open) => self.on_open(open, now, &mut out),
            Event::BgpHeaderErr(n)
            | Event::BgpOpenMsgErr(n)
            | Event::UpdateMsgErr(n)
            | Event::LocalReset(n) => self.fail_with(n, now, &mut out),
            Event::OpenCollisionDump => {
                if self.connected {
                    out.push(Action::SendNotification(notification(
                        code::CEASE,
                        cease::CONNECTION_COLLISION_RESOLUTION,
                    )));
                }
                self.go_idle(DownReason::Collision, now, &mut out);
            }
            Event::NotifMsg(n) => self.go_idle(DownReason::PeerNotification(n), now, &mut out),
            Event::KeepAliveMsg => self.on_keepalive_msg(now, &mut out),
            Event::UpdateMsg => self.on_update_msg(now, &mut out),
        }
        out
    }

    // --- starting and stopping ---------------------------------------------

    /// Idle -> Connect (active) or Active (passive): §8.2.2 Idle, events 1/3/4/5.
    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            self.connect_retry_at = Some(now + self.connect_retry);
            out.push(Action::Connect);
        }
    }

    /// ManualStop (event 2) in any state: Cease if a session is up or
    /// being opened and a message was asked for; then Idle, not restarting.
    fn stop(&mut self, notify: Option<String>, out: &mut Vec<Action>) {
        self.started = false;
        self.idle_hold_at = None;
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            if let Some(msg) = notify {
                out.push(Action::SendNotification(Notification::cease_with_message(
                    cease::ADMINISTRATIVE_SHUTDOWN,
                    &msg,
                )));
            }
        }
        let was_established = self.state == State::Established;
        self.release(out);
        if was_established {
            out.push(Action::Down(DownReason::Stopped));
        }
    }

    /// Drop the connection, clear timers and session data, go Idle.
    fn release(&mut self, out: &mut Vec<Action>) {
        if self.connected {
            out.push(Action::DropConnection);
            self.connected = false;
        }
        self.connect_retry_at = None;
        self.hold_at = None;
        self.keepalive_at = None;
        self.delay_open_at = None;
        self.peer_open = None;
        self.established_at = None;
        self.state = State::Idle;
    }

    /// A session failure: release, report Down if it was Established, and
    /// restart after the (backed-off) idle-hold time if still started.
    fn go_idle(&mut self, reason: DownReason, now: Instant, out: &mut Vec<Action>) {
        let was_established = self.state == State::Established;
        if let Some(since) = self.established_at {
            // Stable long enough: forget earlier failures (DampPeerOscillations).
            if now.duration_since(since) >= self.config.timers.idle_hold_max {
                self.idle_hold = self.config.timers.idle_hold;
                self.connect_retry = self.config.timers.connect_retry;
            }
        }
        self.release(out);
        if was_established {
            out.push(Action::Down(reason));
        }
        if self.started {
            self.idle_hold_at = Some(now + self.idle_hold);
            self.idle_hold = (self.idle_hold * 2).min(self.config.timers.idle_hold_max);
        }
    }

    /// Send `n`, then fail the session with it.
    fn fail_with(&mut self, n: Notification, now: Instant, out: &mut Vec<Action>) {
        if self.connected {
            out.push(Action::SendNotification(n.clone()));
        }
        self.go_idle(DownReason::LocalNotification(n), now, out);
    }

    /// An event the current state does not expect: FSM Error (RFC 6608
    /// subcodes 1-3 by state) when a session is being opened or is up;
    /// otherwise drop the connection and go Idle.
    fn unexpected(&mut self, now: Instant, out: &mut Vec<Action>) {
        let subcode = match self.state {
            State::OpenSent => fsm::UNEXPECTED_IN_OPEN_SENT,
            State::OpenConfirm => fsm::UNEXPECTED_IN_OPEN_CONFIRM,
            State::Established => fsm::UNEXPECTED_IN_ESTABLISHED,
            State::Idle | State::Connect | State::Active => {
                return self.go_idle(DownReason::ConnectionLost, now, out);
            }
        };
        self.fail_with(notification(code::FSM, subcode), now, out);
    }

    /// Replace the current connection by a new one the peer opened (the
    /// collision winner of §6.8, or a restarted peer's connection that
    /// supersedes an Established session, RFC 4724 §4.2). The old connection
    /// is the driver's to close; the machine starts over on the new one as
    /// if it had been accepted in Active (event 17). Reports `Down` first
    /// when a session was Established.
    pub fn adopt_connection(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let was_established = self.state == State::Established;
        self.connected = false;
        self.release(&mut out);
        if was_established {
            out.push(Action::Down(DownReason::Collision));
        }
        self.state = State::Active;
        self.on_connected(now, &mut out);
        out
    }

    // --- connection events ---------------------------------------------------

    /// Events 16/17 in Connect or Active: send OPEN (or start DelayOpen).
    fn on_connected(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Connect | State::Active => {
                self.connected = true;
                self.connect_retry_at = None;
                // A connection came up: the next failure starts the backoff over.
                self.connect_retry = self.config.timers.connect_retry;
                match self.config.timers.delay_open {
                    Some(d) => self.delay_open_at = Some(now + d),
                    None => self.send_open(now, out),
                }
            }
            // Idle refuses connections; later states already have one (a
            // second connection is the driver's, see collision::resolve).
            _ => out.push(Action::DropConnection),
        }
    }

    fn send_open(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendOpen(self.our_open()));
        self.hold_at = Some(now + self.config.timers.open_hold);
        self.state = State::OpenSent;
    }

    /// Event 18.
    fn on_connection_fails(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active | State::OpenSent => {
                // Keep listening; retry later (backing off) unless passive.
                self.connected = false;
                self.hold_at = None;
                self.delay_open_at = None;
                self.state = State::Active;
                if !self.config.passive {
                    self.connect_retry_at = Some(now + self.connect_retry);
                    self.connect_retry =
                        (self.connect_retry * 2).min(self.config.timers.idle_hold_max);
                }
            }
            State::OpenConfirm | State::Established => {
                self.connected = false;
                self.go_idle(DownReason::ConnectionLost, now, out);
            }
        }
    }

    /// Event 18 as [`Event::TcpConnectionRefused`]: while the refusal
    /// backoff is below the ConnectRetry time, an active peer in Connect,
    /// Active or OpenSent goes back to Active and connects again after
    /// it (doubling it); otherwise as [`Fsm::on_connection_fails`].
    fn on_connection_refused(&mut self, now: Instant, out: &mut Vec<Action>) {
        let fast = self.refused_retry < self.config.timers.connect_retry;
        let trying = matches!(self.state, State::Connect | State::Active | State::OpenSent);
        if !fast || !trying || self.config.passive {
            return self.on_connection_fails(now, out);
        }
        self.connected = false;
        self.hold_at = None;
        self.delay_open_at = None;
        self.state = State::Active;
        self.connect_retry_at = Some(now + self.refused_retry);
        self.refused_retry = (self.refused_retry * 2).min(self.config.timers.connect_retry);
    }

    // --- timers ------------------------------------------------------------

    /// Event 9.
    fn on_connect_retry_timer_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Connect | State::Active => {
                if self.connected {
                    // DelayOpen was running on a connection: drop it, retry.
                    out.push(Action::DropConnection);
                    self.connected = false;
                    self.delay_open_at = None;
                }
                self.state = State::Connect;
                self.connect_retry_at = Some(now + self.connect_retry);
                out.push(Action::Connect);
            }
            _ => self.unexpected(now, out),
        }
    }

    /// Event 10: Hold Timer Expired (4/0) in OpenSent, OpenConfirm, Established.
    fn on_hold_timer_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::OpenSent | State::OpenConfirm | State::Established => {
                if self.connected {
                    out.push(Action::SendNotification(notification(
                        code::HOLD_TIMER_EXPIRED,
                        0,
                    )));
                }
                self.go_idle(DownReason::HoldTimerExpired, now, out);
            }
            _ => {}
        }
    }

    /// Event 11.
    fn on_keepalive_timer_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        if matches!(self.state, State::OpenConfirm | State::Established) {
            out.push(Action::SendKeepalive);
            self.keepalive_at = Some(now + self.keepalive);
        }
    }

    /// Event 12: send our OPEN now.
    fn on_delay_open_timer_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        if matches!(self.state, State::Connect | State::Active) && self.connected {
            self.send_open(now, out);
        }
    }

    // --- messages ------------------------------------------------------------

    /// Events 19/20: check the OPEN (§6.2 parts the codec cannot know),
    /// negotiate timers, send KEEPALIVE, go OpenConfirm.
    fn on_open(&mut self, open: Open, now: Instant, out: &mut Vec<Action>) {
        let delay_open_running = self.delay_open_at.is_some();
        match self.state {
            State::OpenSent => {}
            // Event 20: the peer opened first while we delayed ours.
            State::Connect | State::Active if delay_open_running && self.connected => {
                self.delay_open_at = None;
                out.push(Action::SendOpen(self.our_open()));
            }
            _ => return self.unexpected(now, out),
        }
        if let Some(n) = self.check_open(&open) {
            return self.fail_with(n, now, out);
        }
        let ours = self.config.timers.hold_time;
        // §4.2: the smaller of the two hold times; zero means none.
        self.hold_time = ours.min(open.hold_time);
        self.keepalive = if self.hold_time == 0 {
            Duration::ZERO
        } else {
            let third = Duration::from_secs(u64::from(self.hold_time)) / 3;
            self.config.timers.keepalive.map_or(third, |k| k.min(third))
        };
        self.peer_open = Some(open);
        // The peer's BGP takes us: a later refusal starts the fast retries over.
        self.refused_retry = self.config.timers.refused_retry;
        out.push(Action::SendKeepalive);
        self.restart_hold(now);
        self.keepalive_at = (self.hold_time != 0).then(|| now + self.keepalive);
        self.state = State::OpenConfirm;
    }

    /// §6.2 checks that need the session: peer AS, BGP Identifier, hold time.
    fn check_open(&self, open: &Open) -> Option<Notification> {
        if let Some(expected) = self.config.peer_asn {
            if open.asn != expected {
                return Some(notification(code::OPEN_MESSAGE, open::BAD_PEER_AS));
            }
        }
        // RFC 6286 §2.2: identifiers must differ within an AS (and be non-zero).
        if open.router_id.is_unspecified()
            || (open.router_id == self.config.router_id && open.asn == self.config.local_asn)
        {
            return Some(notification(code::OPEN_MESSAGE, open::BAD_BGP_IDENTIFIER));
        }
        // §6.2: a hold time of one or two seconds must be rejected.
        if open.hold_time == 1 || open.hold_time == 2 {
            return Some(notification(
                code::OPEN_MESSAGE,
                open::UNACCEPTABLE_HOLD_TIME,
            ));
        }
        None
    }

    fn restart_hold(&mut self, now: Instant) {
        self.hold_at =
            (self.hold_time != 0).then(|| now + Duration::from_secs(u64::from(self.hold_time)));
    }

    /// Event 26.
    fn on_keepalive_msg(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::OpenConfirm => {
                self.restart_hold(now);
                self.state = State::Established;
                self.established_at = Some(now);
                let peer_open = self
                    .peer_open
                    .clone()
                    .expect("OpenConfirm holds the peer's OPEN");
                out.push(Action::Established {
                    peer_open,
                    hold_time: self.hold_time,
                    keepalive: self.keepalive,
                });
            }
            State::Established => self.restart_hold(now),
            _ => self.unexpected(now, out),
        }
    }

    /// Event 27.
    fn on_update_msg(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Established => self.restart_hold(now),
            _ => self.unexpected(now, out),
        }
    }
}
