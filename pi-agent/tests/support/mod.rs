//! Real processes on loopback for the agent's end-to-end and fault tests: a gateway, pi-agents,
//! provider tools, and a wallet driven here through `protocol` and `tangle-client`.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use getrandom::SysRng;
use protocol::channel::Tier;
use protocol::consent::{ConsentEvent, ConsentLogWriter, EventKind, Grant, GrantId, Publish};
use protocol::pairing::{Confirmation, ExpectAnnouncement, PairedDevice, PairingCode};
use protocol::provider::{ProviderCard, RequestLink, SignedRequest, card_address, request_address};
use protocol::tangle::Address;
use rand_core::UnwrapErr;

pub const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/iskra-am550-566.p1");

/// A binary built next to pi-agent (same target dir).
pub fn sibling_binary(name: &str) -> PathBuf {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_pi-agent"));
    let path = agent.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p gateway -p provider`)",
        path.display()
    );
    path
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Kills the child when dropped (a failing test must not leave processes behind).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }

    pub fn sigkill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

/// A gateway on 127.0.0.1:port (0 = any), storing in `dir`.
pub fn gateway(dir: &Path, port: u16) -> (Proc, String) {
    let mut child = Command::new(sibling_binary("gateway"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--api-only", "--difficulty", "4"])
        .args(["--rate-limit", "100000", "--rate-burst", "100000"])
        .arg("--store")
        .arg(dir.join("node.sqlite"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().last().unwrap().trim_end_matches('/').to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (Proc(child), url)
}

/// Runs `until` every 100 ms until it returns Some, or panics after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut until: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = until() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The household wallet, driven through `protocol` over the real node.
pub struct Wallet {
    pub client: tangle_client::Client,
    pub runtime: tokio::runtime::Runtime,
    pub paired: PairedDevice,
    pub writer: ConsentLogWriter,
    rng: UnwrapErr<SysRng>,
}

impl Wallet {
    fn fetch_all(
        runtime: &tokio::runtime::Runtime,
        client: &tangle_client::Client,
        address: [u8; 32],
    ) -> Vec<Vec<u8>> {
        runtime
            .block_on(client.list(0, Address(address), 0, 1000))
            .map(|page| page.messages.into_iter().map(|(_, m)| m.payload().to_vec()).collect())
            .unwrap_or_default()
    }

    fn publish_on(
        runtime: &tokio::runtime::Runtime,
        client: &tangle_client::Client,
        item: Publish,
    ) {
        runtime
            .block_on(client.publish(Address(item.address), now() * 1000, item.payload))
            .unwrap();
    }

    /// Pairs with the device showing `code` (as typed from its screen).
    pub fn pair(node: &str, code: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = tangle_client::Client::new([node]).unwrap();
        let mut rng = UnwrapErr(SysRng);
        let wallet = protocol::crypto::PartyKeys::derive(
            &protocol::crypto::PartySecret::generate(&mut rng),
            protocol::crypto::Role::Wallet,
        );
        let start = ExpectAnnouncement::new(PairingCode::parse(code).unwrap());
        let announcements = wait_for("the device's announcement", Duration::from_secs(30), || {
            let found = Self::fetch_all(&runtime, &client, start.announcement_address());
            (!found.is_empty()).then_some(found)
        });
        let refs: Vec<&[u8]> = announcements.iter().map(Vec::as_slice).collect();
        let (expect, claim) = start.claim(&wallet, &refs, &mut rng).unwrap();
        let confirmation_address = expect.confirmation_address();
        Self::publish_on(&runtime, &client, claim);
        let mut expect = Some(expect);
        let paired = wait_for("the device's confirmation", Duration::from_secs(30), || {
            let found = Self::fetch_all(&runtime, &client, confirmation_address);
            let payload = found.last()?.clone();
            match expect.take()?.confirm(&payload) {
                Confirmation::Paired(paired) => Some(*paired),
                Confirmation::Rejected { state, .. } => {
                    expect = Some(*state);
                    None
                }
            }
        });
        let writer = ConsentLogWriter::new(paired.device.id(), &paired.log_key);
        let mut wallet = Self { client, runtime, paired, writer, rng };
        let owner = wallet.paired.owner.id();
        let pairing_id = wallet.paired.pairing_id;
        wallet.append(EventKind::DevicePaired { owner, pairing_id });
        wallet
    }

    pub fn append(&mut self, kind: EventKind) {
        let event = ConsentEvent { device: self.paired.device.id(), time: now(), kind };
        let written = self.writer.append(&self.paired.owner, &event, &mut self.rng).unwrap();
        Self::publish_on(&self.runtime, &self.client, written.publish);
    }

    /// Opens a request link (verifying card and request) and grants `tiers`.
    pub fn grant(&mut self, link: &str, tiers: &[Tier]) -> GrantId {
        let link = RequestLink::parse(link).unwrap();
        let card = Self::fetch_all(&self.runtime, &self.client, card_address(link.provider));
        let card = ProviderCard::decode_for(link.provider, card.last().unwrap()).unwrap();
        let request = Self::fetch_all(&self.runtime, &self.client, request_address(&link.digest));
        let request = SignedRequest::verify(&link, request.last().unwrap(), &card, now()).unwrap();
        let grant =
            Grant::answering(&request, &card, tiers, self.writer.keys(), &mut self.rng).unwrap();
        let id = grant.id;
        self.append(EventKind::Granted(Box::new(grant)));
        id
    }

    pub fn revoke(&mut self, grant: GrantId) {
        self.append(EventKind::Revoked { grant, reason: "moving house".into() });
    }
}

/// A provider tool with its own state directory.
pub struct ProviderTool {
    pub dir: PathBuf,
    pub node: String,
}

impl ProviderTool {
    fn command(&self) -> Command {
        let mut cmd = Command::new(sibling_binary("meterkast-provider"));
        cmd.arg("--state-dir").arg(&self.dir).args(["--node", &self.node]);
        cmd.env("MK_PROVIDER_LOG", "warn");
        cmd
    }

    /// Creates the identity and card; returns the request link.
    pub fn setup(dir: PathBuf, node: &str, name: &str, tier: &str) -> (Self, String) {
        let tool = Self { dir, node: node.to_owned() };
        let url = format!("https://{}.example/", name.to_lowercase());
        let out = tool
            .command()
            .args(["init", "--name", name, "--url", &url, "--contact", "privacy@example.org"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = tool
            .command()
            .args(["request", "--purpose", "insight", "--tier", tier, "--days", "1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let link = String::from_utf8(out.stdout).unwrap().lines().next().unwrap().to_owned();
        (tool, link)
    }

    pub fn follow(&self, out: &Path) -> Proc {
        Proc(
            self.command()
                .args(["follow", "--format", "json", "--provisional", "--poll-ms", "200", "--out"])
                .arg(out)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

/// JSON lines of a provider's output.
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Starts `pi-agent run` replaying the capture.
pub fn agent(state: &Path, node: &str, speed: &str, log: &Path) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_pi-agent"))
            .args(["run", "--replay", CAPTURE, "--speed", speed, "--node", node])
            .args(["--tiers", "second,ten-seconds", "--checkpoint-secs", "2"])
            .args(["--include-raw", "true", "--consent-poll-ms", "200"])
            .arg("--state-dir")
            .arg(state)
            .env("MK_AGENT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Meter times of every telegram in the capture, in order, with the telegram text.
pub fn capture_telegrams() -> Vec<(u64, String)> {
    let bytes = std::fs::read(CAPTURE).unwrap();
    let mut framer = protocol::p1::Framer::default();
    framer.feed(&bytes);
    framer.finish();
    let mut out = Vec::new();
    while let Some(step) = framer.next_frame() {
        let Ok(frame) = step else { continue };
        let telegram = protocol::p1::Telegram::parse(frame).unwrap();
        let readings = protocol::p1::Readings::from_telegram(&telegram);
        let at = readings.meter_time.unwrap().to_utc().unix_seconds() as u64;
        out.push((at, telegram.text().to_owned()));
    }
    out
}
